// `forge generate`: continue a prompt (or a chat) with a model directory. Only the generated
// text goes to stdout, streamed as it is decoded; statistics go to stderr.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "data/chat_template.h"
#include "data/tokenizer.h"
#include "infer/generate.h"
#include "models/pretrained.h"

namespace forge::cli {

int cmd_generate(const Args& args) {
  if (has_flag(args, "--help")) {
    std::printf(
        "usage: forge generate --model DIR [--prompt TEXT | --prompt -] [--chat [--system TEXT]]\n"
        "                      [--max-tokens N] [--temperature T] [--top-p P] [--top-k K] [--seed S]\n"
        "                      [--dtype f32|bf16]\n\n"
        "Generates with a KV cache until an end-of-sequence id of generation_config.json / config.json\n"
        "(with --chat also the tokenizer's eos token, e.g. Llama 3's <|eot_id|>) or --max-tokens (default\n"
        "128). --chat renders the prompt as a user message with the model's chat template. --temperature 0\n"
        "is greedy; an empty prompt starts from the BOS token alone. --prompt - reads stdin.\n");
    return 0;
  }
  const std::string dir = required_flag(args, "--model", "DIR");
  std::string prompt = flag_value(args, "--prompt", "");
  if (prompt == "-") prompt.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  const std::string dt = flag_value(args, "--dtype", "");
  auto model = models::load_model(dir, dt.empty() ? std::nullopt : std::optional<DType>(dtype_from_name(dt)));
  auto tok = data::Tokenizer::from_dir(dir);
  const models::ModelConfig& cfg = model->config();

  infer::GenerateOptions opt;
  opt.max_new_tokens = std::stoll(flag_value(args, "--max-tokens", "128"));
  opt.sampling.temperature = std::stod(flag_value(args, "--temperature", "1.0"));
  opt.sampling.top_p = std::stod(flag_value(args, "--top-p", "1.0"));
  opt.sampling.top_k = std::stoll(flag_value(args, "--top-k", "0"));
  opt.sampling.seed = std::stoull(flag_value(args, "--seed", "0"));
  opt.stop_ids = models::stop_token_ids(dir, cfg);

  std::vector<int64_t> ids;
  if (has_flag(args, "--chat")) {
    nlohmann::json messages = nlohmann::json::array();
    const std::string system = flag_value(args, "--system", "");
    if (!system.empty()) messages.push_back({{"role", "system"}, {"content", system}});
    messages.push_back({{"role", "user"}, {"content", prompt}});
    const std::string text = data::apply_chat_template(*tok, messages, true);
    ids = tok->encode(text, false);  // the template already wrote the special tokens
    if (tok->eos_id() >= 0) opt.stop_ids.push_back(tok->eos_id());
  } else {
    ids = tok->encode(prompt, true);
  }
  if (ids.empty()) {
    const int64_t bos = cfg.bos_token_id >= 0 ? cfg.bos_token_id : tok->bos_id();
    FORGE_CHECK(bos >= 0, "generate: the prompt is empty and the model has no BOS token to start from");
    ids.push_back(bos);
  }
  data::StreamDecoder stream(*tok, /*skip_special_tokens=*/true);
  opt.on_token = [&](int64_t id) {
    std::fputs(stream.push(id).c_str(), stdout);
    std::fflush(stdout);
    return true;
  };
  infer::GenerateResult r = infer::generate(*model, ids, opt);
  std::fputs(stream.finish().c_str(), stdout);
  std::fputs("\n", stdout);
  const double n = double(r.tokens.size());
  std::fprintf(stderr, "forge generate: %zu prompt tokens (%.0f tok/s), %zu generated (%.1f tok/s), finish: %s\n",
               ids.size(), double(ids.size()) / std::max(r.prefill_seconds, 1e-9), r.tokens.size(),
               n > 1 ? (n - 1) / std::max(r.decode_seconds, 1e-9) : 0.0, r.finish_reason.c_str());
  return 0;
}

}  // namespace forge::cli
