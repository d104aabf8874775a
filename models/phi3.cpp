// Phi3ForCausalLM (Phi-3, Phi-3.5, Phi-4, Phi-4-mini): the shared decoder with fused projections,
// qkv_proj (rows q, k, v) and gate_up_proj (rows gate, up), kept fused as the checkpoint and PEFT
// name them; RoPE on partial_rotary_factor of each head (Phi-4-mini: 0.75) with longrope ("su")
// scaling whose original context is the top-level original_max_position_embeddings; Phi-3-mini's
// sliding_window on every layer.
#include "core/error.h"
#include "models/registry.h"

namespace forge::models {
namespace {
void parse(const ConfigReader& r, ModelConfig& c) {
  r.require_act("silu");
  c.fused_qkv = c.fused_gate_up = true;
  FORGE_CHECK(!r.get_bool("attention_bias", false), r.path, ": attention_bias=true is not supported for Phi-3");
  // transformers takes longrope's original context and factor from these top-level fields.
  RopeScaling& s = c.rope_scaling;
  if (s.type == "longrope" && s.original_max_position_embeddings == 0)
    s.original_max_position_embeddings = r.get_int("original_max_position_embeddings", c.max_position_embeddings);
  c.sliding_window = r.get_int("sliding_window", 0);
  r.read_layer_types(c, [](int64_t) { return true; });
}

void write(const ModelConfig& c, nlohmann::json& j) {
  j["hidden_act"] = "silu";
  j["sliding_window"] = c.sliding_window ? nlohmann::json(c.sliding_window) : nlohmann::json(nullptr);
  if (c.rope_scaling.original_max_position_embeddings > 0)
    j["original_max_position_embeddings"] = c.rope_scaling.original_max_position_embeddings;
}

void defaults(ModelConfig& c) {
  c.fused_qkv = c.fused_gate_up = true;
  c.rope_theta = 10000.0;
  c.partial_rotary_factor = 0.75;  // Phi-4-mini's
}
}  // namespace

extern const Architecture kPhi3{"Phi3ForCausalLM", "phi3", parse, write, defaults};

}  // namespace forge::models
