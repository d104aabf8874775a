// The OpenAI request bodies of every route the server parses: /v1/completions, /v1/chat/completions,
// /tokenize and /detokenize (the first byte picks the route and the model's tool and reasoning
// formats, the rest is the body). A bad body must be an ApiError (a 4xx), nothing else.
#include "infer/openai_api.h"
#include "data/make_tokenizer.h"
#include "models/causal_lm.h"
#include "models/presets.h"
#include "tests/fuzz/fuzz_util.h"

namespace {
using namespace forge;

infer::Engine& tiny_engine() {
  static infer::Engine engine = [] {
    models::ModelConfig c = models::preset_config("llama", "tiny");
    data::TokenizerFiles t = data::make_byte_level_tokenizer(c.vocab_size);
    c.bos_token_id = t.bos_id;
    c.eos_token_ids = {t.eos_id, t.eot_id};
    auto model = std::make_shared<models::CausalLM>(c);
    model->init_weights(0.02, 1);
    auto tok = std::make_shared<data::Tokenizer>(t.tokenizer, t.config, "tiny tokenizer");
    infer::EngineConfig cfg;
    cfg.kv_cache_bytes = 4 << 20;
    return infer::Engine(model, tok, c.eos_token_ids, cfg);
  }();
  return engine;
}
}  // namespace

// Loads the fixtures before the first input, outside the 1 s per-input limit.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)tiny_engine();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const infer::Engine& engine = tiny_engine();
  const std::string body(fuzz::as_text(data + 1, size - 1));
  auto resolve = [](const std::string& m) -> int64_t { return m == "tiny" || m.empty() ? 0 : -1; };
  infer::ModelDefaults defaults;
  defaults.tool_format = infer::ToolFormat((data[0] >> 2) % 3);
  defaults.reasoning = infer::ReasoningFormat((data[0] >> 4) % 2);
  if (data[0] & 0x40) defaults.sampling.temperature = 0.7, defaults.sampling.max_new_tokens = 9;
  try {
    switch (data[0] & 3) {
      case 0: (void)infer::parse_request(infer::Endpoint::completions, body, engine, resolve, defaults); break;
      case 1: (void)infer::parse_request(infer::Endpoint::chat, body, engine, resolve, defaults); break;
      case 2: (void)infer::dump(infer::tokenize(body, engine, resolve, defaults)); break;
      case 3: (void)infer::dump(infer::detokenize(body, engine, resolve)); break;
    }
  } catch (const infer::ApiError& e) {
    if (e.status < 400 || e.status >= 500) {
      std::fprintf(stderr, "ApiError with status %d: %s\n", e.status, e.what());
      __builtin_trap();
    }
  }
  return 0;
}
