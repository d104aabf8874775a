// LlamaForCausalLM (Llama 2, 3, 3.x, TinyLlama, SmolLM, ...) and MistralForCausalLM: the shared
// decoder as it is (models/causal_lm.h). Llama's attention_bias puts a bias on q, k, v and o;
// Mistral's sliding_window (Mistral 7B v0.1's 4096; null in later ones) applies to every layer.
#include "models/registry.h"

namespace forge::models {
namespace {
void parse_llama(const ConfigReader& r, ModelConfig& c) { read_llama_options(r, c); }
void write_llama(const ModelConfig& c, nlohmann::json& j) { write_llama_options(c, j); }
void defaults_llama(ModelConfig& c) { c.rope_theta = 10000.0; }

void parse_mistral(const ConfigReader& r, ModelConfig& c) {
  r.require_act("silu");
  c.sliding_window = r.get_int("sliding_window", 0);
  r.read_layer_types(c, [](int64_t) { return true; });
}
void write_mistral(const ModelConfig& c, nlohmann::json& j) {
  j["hidden_act"] = "silu";
  j["sliding_window"] = c.sliding_window ? nlohmann::json(c.sliding_window) : nlohmann::json(nullptr);
}
}  // namespace

void read_llama_options(const ConfigReader& r, ModelConfig& c) {
  r.require_act("silu");
  c.attention_bias = c.o_proj_bias = r.get_bool("attention_bias", false);
  c.mlp_bias = r.get_bool("mlp_bias", false);
}
void write_llama_options(const ModelConfig& c, nlohmann::json& j) {
  j["hidden_act"] = "silu";
  j["attention_bias"] = c.attention_bias;
  j["mlp_bias"] = c.mlp_bias;
}

extern const Architecture kLlama{"LlamaForCausalLM", "llama", parse_llama, write_llama, defaults_llama};
extern const Architecture kMistral{"MistralForCausalLM", "mistral", parse_mistral, write_mistral, defaults_llama};

}  // namespace forge::models
