// Qwen3ForCausalLM (Qwen3 0.6B-32B dense): the shared decoder with an RMSNorm over each head of q
// and k before RoPE (self_attn.q_norm / k_norm, weight [head_dim]), head_dim given by the config
// (not hidden / heads), and attention_bias on q, k, v and o (false in every released model).
#include "core/error.h"
#include "models/registry.h"

namespace forge::models {
namespace {
void parse(const ConfigReader& r, ModelConfig& c) {
  r.require_act("silu");
  c.qk_norm = true;
  c.attention_bias = c.o_proj_bias = r.get_bool("attention_bias", false);
  read_qwen_windows(r, c);
}
void write(const ModelConfig& c, nlohmann::json& j) {
  j["hidden_act"] = "silu";
  j["attention_bias"] = c.attention_bias;
  write_qwen_windows(c, j);
}
void defaults(ModelConfig& c) {
  c.rope_theta = 1000000.0;
  c.qk_norm = true;
  c.rms_norm_eps = 1e-6;
}
}  // namespace

extern const Architecture kQwen3{"Qwen3ForCausalLM", "qwen3", parse, write, defaults};

}  // namespace forge::models
