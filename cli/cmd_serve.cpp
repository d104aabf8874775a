// `forge serve`: the OpenAI-compatible server over the paged-KV engine. SIGTERM / SIGINT drain:
// running requests finish, new ones get 503, then the port closes.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "cli/commands.h"
#include "core/error.h"
#include "data/chat_template.h"
#include "infer/server.h"
#include "kernels/cuda/cuda_backend.h"
#include "models/pretrained.h"

namespace forge::cli {
namespace {
// "512M", "2G", "1.5GiB", "1048576" -> bytes.
int64_t parse_size(const std::string& s, const char* flag) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    throw Error(std::string(flag) + ": expected a size like 512M or 2G, got '" + s + "'");
  }
  std::string unit = s.substr(used);
  double mul = 1;
  if (unit == "K" || unit == "KiB" || unit == "k") mul = 1024.0;
  else if (unit == "M" || unit == "MiB") mul = 1024.0 * 1024;
  else if (unit == "G" || unit == "GiB") mul = 1024.0 * 1024 * 1024;
  else if (!unit.empty()) throw Error(std::string(flag) + ": unknown unit '" + unit + "' (use K, M or G)");
  FORGE_CHECK(v > 0 && v * mul < 1e18, flag, " must be a positive size, got '", s, "'");
  return int64_t(v * mul);
}
}  // namespace

int cmd_serve(const Args& args) {
  check_flags(args, {"--model=", "--host=", "--port=", "--served-name=", "--lora=", "--api-key=", "--dtype=",
                     "--kv-cache-memory=", "--kv-cache-dtype=", "--max-model-len=", "--max-num-seqs=",
                     "--max-num-batched-tokens=", "--block-size=", "--no-prefix-caching", "--max-lora-rank=",
                     "--max-body-bytes=", "--request-timeout=", "--tool-call-parser=", "--reasoning-parser=",
                     "--generation-config=", "--chat-template=", "--device=", "--gpu-memory-utilization="});
  if (has_flag(args, "--help")) {
    std::printf(
        "usage: forge serve --model DIR [--host H] [--port P] [--served-name NAME] [--lora NAME=DIR ...]\n"
        "                   [--api-key KEY] [--dtype f32|bf16] [--kv-cache-memory SIZE] [--kv-cache-dtype bf16|f32]\n"
        "                   [--max-model-len N] [--max-num-seqs N] [--max-num-batched-tokens N] [--block-size N]\n"
        "                   [--no-prefix-caching] [--max-lora-rank R] [--max-body-bytes SIZE] [--request-timeout S]\n"
        "                   [--tool-call-parser auto|hermes|llama3_json|none] [--reasoning-parser auto|think|none]\n"
        "                   [--generation-config auto|none|DIR] [--chat-template FILE|TEMPLATE]\n"
        "                   [--device auto|cpu|cuda|cuda:N] [--gpu-memory-utilization F]\n\n"
        "OpenAI-compatible API: /v1/chat/completions, /v1/completions, /v1/models, /health, /metrics,\n"
        "and vLLM's /tokenize and /detokenize.\n"
        "Binds 127.0.0.1:8000 unless told otherwise (--port 0 picks a free port; the address is printed).\n"
        "The model's id is the directory's name unless --served-name; each --lora NAME=DIR serves a PEFT\n"
        "adapter under NAME, batched together with base-model requests. --api-key requires\n"
        "'Authorization: Bearer KEY' on /v1/. The KV cache gets --kv-cache-memory (default 1G), in blocks of\n"
        "--block-size tokens (16), stored in --kv-cache-dtype (default bf16, whatever the model's dtype; f32\n"
        "doubles its size and reproduces a f32 model's contiguous attention exactly); --max-model-len\n"
        "defaults to the model's context capped to what it holds.\n"
        "tool_choice \"auto\" reads calls in the model's format: hermes (<tool_call> tags: Qwen, Hermes) or\n"
        "llama3_json (a bare JSON object: Llama 3.1+); auto (the default) takes it from the chat template.\n"
        "A call the model opens is held to the functions' schemas, so it always parses.\n"
        "--reasoning-parser think (also named qwen3, deepseek_r1) returns a reasoning model's <think> text\n"
        "as the message's 'reasoning' (and 'reasoning_content'), apart from its content; JSON schemas and\n"
        "tool calls then hold only the answer after it. auto (the default) turns it on when the chat\n"
        "template writes <think> tags; chat_template_kwargs {\"enable_thinking\": false} turns Qwen 3's off.\n"
        "Sampling fields a request leaves out (temperature, top_p, top_k, min_p, repetition_penalty, and\n"
        "max_tokens from max_new_tokens) take the model's generation_config.json, as vLLM does;\n"
        "--generation-config none uses OpenAI's defaults instead, DIR another directory's file.\n"
        "--chat-template replaces the model's chat template (a .jinja file, or the template itself).\n"
        "--device: auto (the default) serves on the GPU when there is one. There the weights, the paged KV\n"
        "cache and the adapters live in device memory; unless --kv-cache-memory is given, the cache takes\n"
        "--gpu-memory-utilization (0.9) of the device less the weights and a step's activations.\n"
        "SIGTERM or Ctrl-C: running requests finish, new ones get 503, then the server exits.\n");
    return 0;
  }
  const std::string dir = required_flag(args, "--model", "DIR");
  const std::optional<DType> dt = dtype_flag(args);  // before anything starts: a bad one is refused
  infer::EngineConfig ec;
  ec.kv_cache_bytes = parse_size(flag_value(args, "--kv-cache-memory", "1G"), "--kv-cache-memory");
  const bool kv_given = !flag_value(args, "--kv-cache-memory", "").empty();
  const double utilization = number_flag(args, "--gpu-memory-utilization", 0.9, 0.05, 1.0);
  ec.kv_cache_dtype = dtype_from_name(flag_value(args, "--kv-cache-dtype", "bf16"));  // checked by the engine
  ec.max_model_len = int_flag(args, "--max-model-len", 0, 0);  // 0: the model's context
  ec.max_num_seqs = int_flag(args, "--max-num-seqs", 64, 1, 1 << 20);
  ec.max_num_batched_tokens = int_flag(args, "--max-num-batched-tokens", 2048, 1, 1 << 30);
  ec.block_size = int_flag(args, "--block-size", 16, 1, 1 << 16);
  ec.prefix_caching = !has_flag(args, "--no-prefix-caching");
  ec.max_lora_rank = int_flag(args, "--max-lora-rank", 64, 1, 1 << 16);
  infer::ServerOptions so;
  so.http.host = flag_value(args, "--host", "127.0.0.1");
  so.http.port = int(int_flag(args, "--port", 8000, 0, 65535));
  so.http.max_body_bytes = size_t(parse_size(flag_value(args, "--max-body-bytes", "4M"), "--max-body-bytes"));
  so.http.request_timeout_s = number_flag(args, "--request-timeout", 30, 0.001, 1e6);
  so.api_key = flag_value(args, "--api-key", "");
  so.served_name = flag_value(args, "--served-name", "");
  if (so.served_name.empty()) so.served_name = std::filesystem::path(dir).lexically_normal().filename().string();
  if (so.served_name.empty()) so.served_name = std::filesystem::absolute(dir).parent_path().filename().string();
  const std::string parser = flag_value(args, "--tool-call-parser", "auto");
  if (parser != "auto") infer::tool_format_named(parser);  // a wrong name fails before the model loads
  const std::string thinker = flag_value(args, "--reasoning-parser", "auto");
  const std::string gen_flag = flag_value(args, "--generation-config", "auto");
  so.model.sampling = models::generation_defaults(gen_flag, dir);
  if (thinker != "auto") infer::reasoning_format_named(thinker);
  std::vector<std::pair<std::string, std::string>> loras;
  for (const std::string& v : flag_values(args, "--lora")) {
    const size_t eq = v.find('=');
    FORGE_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < v.size(), "--lora expects NAME=DIR, got '", v, "'");
    loras.emplace_back(v.substr(0, eq), v.substr(eq + 1));
  }

  // Signals go to the main thread's sigwait only: block them before any thread starts.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  const Device dev = device_flag(args);
  auto model = models::load_model(dir, dt, dev);
  const size_t weight_bytes = dev.is_cuda() ? cuda::bytes_in_use(dev.index) : 0;
  if (dev.is_cuda() && !kv_given)
    ec.kv_cache_bytes = infer::device_kv_cache_bytes(model->config(), ec, dev.index, utilization);
  auto tok = data::Tokenizer::from_dir(dir);
  data::override_chat_template(*tok, flag_value(args, "--chat-template", ""));
  so.model.tool_format = parser == "auto" ? infer::detect_tool_format(tok->chat_template()) : infer::tool_format_named(parser);
  so.model.reasoning = thinker == "auto" ? infer::detect_reasoning_format(tok->chat_template())
                                   : infer::reasoning_format_named(thinker);
  // The tags are read from the text, which skip_special_tokens strips of special tokens.
  for (std::string_view tag : {infer::ReasoningSplitter::kStart, infer::ReasoningSplitter::kEnd}) {
    const int64_t id = tok->token_to_id(std::string(tag));
    if (so.model.reasoning == infer::ReasoningFormat::None || id < 0 || !tok->is_special(id)) continue;
    FORGE_CHECK(thinker == "auto", "--reasoning-parser: ", tag, " is a special token of this tokenizer, which "
                "responses leave out; pass --reasoning-parser none");
    std::fprintf(stderr, "forge serve: %s is a special token here; reasoning is not returned apart\n",
                 std::string(tag).c_str());
    so.model.reasoning = infer::ReasoningFormat::None;
  }
  infer::Engine engine(model, tok, models::stop_token_ids(dir, model->config()), ec);
  for (auto& [name, adir] : loras) {
    FORGE_CHECK(name != so.served_name, "--lora name '", name, "' is the base model's name");
    for (auto& n : so.lora_names) FORGE_CHECK(n != name, "--lora name '", name, "' is given twice");
    try {
      engine.add_adapter(adir);
    } catch (const std::exception& e) {
      throw Error("--lora " + name + "=" + adir + ": " + e.what());
    }
    so.lora_names.push_back(name);
  }
  infer::Server server(engine, so);
  server.start();
  std::fprintf(stderr, "forge serve: model '%s' (%s) with %zu adapter(s); KV cache %lld blocks of %lld tokens, max model len %lld\n",
               so.served_name.c_str(), dir.c_str(), loras.size(), (long long)(engine.num_blocks() - 1),
               (long long)ec.block_size, (long long)engine.max_model_len());
  if (dev.is_cuda()) {
    size_t free_b = 0, total_b = 0;
    cuda::memory_info(dev.index, &free_b, &total_b);
    std::fprintf(stderr, "forge serve: %s: weights %.0f MiB, KV cache %.0f MiB; %.0f MiB in use of %.0f MiB\n",
                 dev.str().c_str(), double(weight_bytes) / (1 << 20), double(ec.kv_cache_bytes) / (1 << 20),
                 double(cuda::bytes_in_use(dev.index)) / (1 << 20), double(total_b) / (1 << 20));
  }
  if (so.model.tool_format != infer::ToolFormat::None)
    std::fprintf(stderr, "forge serve: tool calls in the %s format\n", infer::tool_format_name(so.model.tool_format));
  if (!so.model.sampling.empty())
    std::fprintf(stderr, "forge serve: sampling defaults from %s/generation_config.json: %s (a request's own values "
                 "win; --generation-config none for OpenAI's)\n", (gen_flag == "auto" ? dir : gen_flag).c_str(),
                 so.model.sampling.describe().c_str());
  if (so.model.reasoning != infer::ReasoningFormat::None)
    std::fprintf(stderr, "forge serve: <think> reasoning returned as 'reasoning'\n");
  std::fprintf(stderr, "forge serve: listening on http://%s:%d\n", so.http.host.c_str(), server.port());
  std::fflush(stderr);
  // The engine runs on this thread, the one that loaded the model (see Engine::run); signals are
  // waited for on another.
  std::thread signals([&] {
    int sig = 0;
    sigwait(&sigs, &sig);
    std::fprintf(stderr, "forge serve: %s received; finishing running requests\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    server.shutdown(60);
    engine.stop();
  });
  engine.run();
  signals.join();
  std::fprintf(stderr, "forge serve: stopped\n");
  return 0;
}

}  // namespace forge::cli
