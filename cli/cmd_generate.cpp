// `forge generate`: continue a prompt (or a chat) with a model directory, through the same
// paged-KV engine as `forge serve`. Only the generated text goes to stdout, streamed as it is
// decoded; statistics go to stderr.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "core/file_util.h"
#include "data/chat_template.h"
#include "data/tokenizer.h"
#include "infer/engine.h"
#include "models/pretrained.h"

namespace forge::cli {

int cmd_generate(const Args& args) {
  check_flags(args, {"--model=", "--prompt=", "--chat", "--system=", "--max-tokens=", "--temperature=", "--top-p=",
                     "--top-k=", "--min-p=", "--repetition-penalty=", "--seed=", "--stop=", "--ignore-eos", "--json", "--json-schema=",
                     "--lora=", "--generation-config=", "--chat-template=",
                     "--dtype=", "--kv-cache-dtype=", "--device="});
  if (has_flag(args, "--help")) {
    std::printf(
        "usage: forge generate --model DIR [--prompt TEXT | --prompt -] [--chat [--system TEXT]]\n"
        "                      [--max-tokens N] [--temperature T] [--top-p P] [--top-k K] [--min-p P]\n"
        "                      [--repetition-penalty R] [--seed S] [--stop TEXT ...] [--ignore-eos]\n"
        "                      [--json | --json-schema FILE] [--lora DIR] [--dtype f32|bf16] [--kv-cache-dtype bf16|f32]\n"
        "                      [--generation-config auto|none|DIR] [--chat-template FILE|TEMPLATE]\n"
        "                      [--device auto|cpu|cuda|cuda:N]\n\n"
        "Generates until an end-of-sequence id of generation_config.json / config.json (with --chat also\n"
        "the tokenizer's eos token, e.g. Llama 3's <|eot_id|>), a --stop string, or --max-tokens (default\n"
        "128). --chat renders the prompt as a user message with the model's chat template. --temperature 0\n"
        "is greedy; an empty prompt starts from the BOS token alone. --prompt - reads stdin. --lora applies\n"
        "a PEFT adapter. --json is JSON mode (the output is a JSON object; ends when it closes);\n"
        "--json-schema holds the output to a JSON Schema (the subset of docs/serving.md). Uses the serving\n"
        "engine (paged KV cache), so results equal `forge serve`'s. Sampling flags left out take the model's\n"
        "generation_config.json (temperature, top_p, top_k, min_p, repetition_penalty, max_new_tokens), as\n"
        "forge serve does; --generation-config none gives the defaults above. --chat-template replaces\n"
        "the model's chat template for --chat (a .jinja file, or the template itself). --device auto (the\n"
        "default) runs on the GPU when there is one.\n");
    return 0;
  }
  const std::string dir = required_flag(args, "--model", "DIR");
  const models::GenerationDefaults g = models::generation_defaults(flag_value(args, "--generation-config", "auto"), dir);
  std::string prompt = flag_value(args, "--prompt", "");
  if (prompt == "-") prompt.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  auto model = models::load_model(dir, dtype_flag(args), device_flag(args));
  auto tok = data::Tokenizer::from_dir(dir);
  data::override_chat_template(*tok, flag_value(args, "--chat-template", ""));
  const models::ModelConfig& cfg = model->config();

  infer::Request req;
  // The ranges of the OpenAI fields `forge serve` takes (infer/openai_api.cpp).
  req.max_tokens = int_flag(args, "--max-tokens", g.max_new_tokens.value_or(128), 1);
  req.sampling.temperature = number_flag(args, "--temperature", g.temperature.value_or(1.0), 0, 2);
  req.sampling.top_p = number_flag(args, "--top-p", g.top_p.value_or(1.0), 0, 1);
  FORGE_CHECK(req.sampling.top_p > 0, "--top-p: expected a number above 0 and at most 1, got 0");
  req.sampling.top_k = std::max<int64_t>(0, int_flag(args, "--top-k", g.top_k.value_or(0), 0));
  req.sampling.min_p = number_flag(args, "--min-p", g.min_p.value_or(0), 0, 1);
  req.sampling.repetition_penalty = number_flag(args, "--repetition-penalty", g.repetition_penalty.value_or(1.0), 1e-6, 100);
  req.seed = uint64_t(int_flag(args, "--seed", 0));
  req.ignore_eos = has_flag(args, "--ignore-eos");
  FORGE_CHECK(!has_flag(args, "--json") || !has_flag(args, "--json-schema"), "--json and --json-schema: give one");
  if (has_flag(args, "--json")) req.json_schema = infer::JsonSchema::any_object();
  if (const std::string path = flag_value(args, "--json-schema", ""); !path.empty()) {
    const nlohmann::json schema = read_json_file(path);  // names the file if unreadable or not JSON
    try {
      req.json_schema = infer::JsonSchema::compile(schema);
    } catch (const Error& e) {
      throw Error("--json-schema " + path + ": " + e.what());
    }
  }
  req.stop = flag_values(args, "--stop");

  if (has_flag(args, "--chat")) {
    nlohmann::json messages = nlohmann::json::array();
    const std::string system = flag_value(args, "--system", "");
    if (!system.empty()) messages.push_back({{"role", "system"}, {"content", system}});
    messages.push_back({{"role", "user"}, {"content", prompt}});
    const std::string text = data::apply_chat_template(*tok, messages, true);
    req.prompt = tok->encode(text, false);  // the template already wrote the special tokens
    if (tok->eos_id() >= 0) req.stop_token_ids.push_back(tok->eos_id());
  } else {
    req.prompt = tok->encode(prompt, true);
  }
  if (req.prompt.empty()) {
    const int64_t bos = cfg.bos_token_id >= 0 ? cfg.bos_token_id : tok->bos_id();
    FORGE_CHECK(bos >= 0, "generate: the prompt is empty and the model has no BOS token to start from");
    req.prompt.push_back(bos);
  }
  const int64_t total = int64_t(req.prompt.size()) + req.max_tokens;
  FORGE_CHECK(total <= cfg.max_position_embeddings, "generate: prompt (", req.prompt.size(), " tokens) + --max-tokens (",
              req.max_tokens, ") exceed the model's context of ", cfg.max_position_embeddings);
  infer::EngineConfig ec;
  ec.max_model_len = total;
  ec.kv_cache_dtype = dtype_from_name(flag_value(args, "--kv-cache-dtype", "bf16"));
  ec.kv_cache_bytes = (total + ec.block_size) * infer::kv_bytes_per_token(cfg, ec.kv_cache_dtype);
  infer::Engine engine(model, tok, models::stop_token_ids(dir, cfg), ec);
  const std::string lora = flag_value(args, "--lora", "");
  if (!lora.empty()) req.adapter = engine.add_adapter(lora);

  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  double first = 0;
  std::string finish;
  int64_t generated = 0;
  const size_t prompt_len = req.prompt.size();
  engine.add(std::move(req), [&](const infer::Event& ev) {
    if (generated == 0 && !ev.tokens.empty()) first = std::chrono::duration<double>(Clock::now() - t0).count();
    generated += int64_t(ev.tokens.size());
    std::fputs(ev.text.c_str(), stdout);
    std::fflush(stdout);
    if (ev.finished) finish = ev.finish_reason;
  });
  engine.run_until_idle();
  const double total_s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::fputs("\n", stdout);
  std::fprintf(stderr, "forge generate: %zu prompt tokens (%.0f tok/s), %lld generated (%.1f tok/s), finish: %s\n",
               prompt_len, double(prompt_len) / std::max(first, 1e-9), (long long)generated,
               generated > 1 ? double(generated - 1) / std::max(total_s - first, 1e-9) : 0.0, finish.c_str());
  return 0;
}

}  // namespace forge::cli
