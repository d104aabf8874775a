// Qwen2ForCausalLM (Qwen2, Qwen2.5): the shared decoder with a bias on q, k and v (not o).
#include "core/error.h"
#include "models/registry.h"

namespace forge::models {
namespace {
void parse(const ConfigReader& r, ModelConfig& c) {
  r.require_act("silu");
  c.attention_bias = true;
  FORGE_CHECK(!r.get_bool("use_sliding_window", false), r.path,
              ": use_sliding_window=true is not supported (sliding-window attention is not implemented)");
}
void write(const ModelConfig&, nlohmann::json& j) {
  j["hidden_act"] = "silu";
  j["use_sliding_window"] = false;
}
void defaults(ModelConfig& c) {
  c.rope_theta = 1000000.0;
  c.attention_bias = true;
}
}  // namespace

extern const Architecture kQwen2{"Qwen2ForCausalLM", "qwen2", parse, write, defaults};

}  // namespace forge::models
