// A decoder-only model's shape and options, read from (and written to) a HF `config.json`. The
// common fields are read here; each architecture (models/registry.h) reads its own and sets the
// shared decoder's options (models/causal_lm.h). Unsupported architectures and values are errors
// that name the file and the field.
#pragma once
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "models/rope.h"

namespace forge::models {

struct ModelConfig {
  std::string architecture = "LlamaForCausalLM";
  std::string model_type = "llama";  // llama | mistral | qwen2
  int64_t hidden_size = 0, intermediate_size = 0, num_hidden_layers = 0;
  int64_t num_attention_heads = 0, num_key_value_heads = 0, head_dim = 0;
  int64_t vocab_size = 0, max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6, rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // bias on q/k/v
  bool o_proj_bias = false;     // bias on the attention's output projection (Llama's attention_bias)
  bool mlp_bias = false;
  bool qk_norm = false;         // RMSNorm over each head of q and k before RoPE (Qwen3)
  // Sliding-window attention: the layers marked "sliding_attention" in layer_types let a token see
  // only the last sliding_window tokens (itself included); the rest ("full_attention") see all.
  int64_t sliding_window = 0;
  std::vector<std::string> layer_types;  // one per layer; empty: every layer full
  // Gemma's options (models/gemma.cpp):
  bool norm_unit_offset = false;  // every RMSNorm applies (1 + w), its weight stored from zero
  bool sandwich_norms = false;    // post_attention_layernorm normalises the attention's output, and
                                  // pre_/post_feedforward_layernorm wrap the MLP
  std::string mlp_act = "silu";   // the gate's activation: silu (SwiGLU) or gelu_pytorch_tanh (GeGLU)
  bool scale_embeddings = false;  // embeddings times sqrt(hidden_size), rounded to the weights' dtype
  double query_pre_attn_scalar = 0;   // attention scale 1/sqrt(this); 0: 1/sqrt(head_dim)
  double attn_logit_softcapping = 0;  // attention scores softcap * tanh(s / softcap); 0: none
  double final_logit_softcapping = 0; // the same on the logits
  double rope_local_theta = 0;    // sliding layers' own rope theta, unscaled (Gemma 3); 0: as the rest
  double partial_rotary_factor = 1.0;  // RoPE turns this share of each head's dims (Phi-3/4: 0.75)
  std::vector<bool> skip_rope;    // per layer: true where q and k are not rotated (SmolLM3); empty: none
  bool fused_qkv = false;         // one qkv_proj (rows q, k, v) instead of q/k/v_proj (Phi-3)
  bool fused_gate_up = false;     // one gate_up_proj (rows gate, up) instead of gate/up_proj (Phi-3)
  int64_t bos_token_id = -1;
  std::vector<int64_t> eos_token_ids;
  DType dtype = DType::F32;     // torch_dtype
  // The multimodal architecture whose text model this is (its weights carry that layout), or
  // empty; never written: Forge saves the text model as text_arch (registry.h TextModelOf).
  std::string loaded_from;

  int64_t q_dim() const { return num_attention_heads * head_dim; }
  int64_t window(int64_t layer) const;  // the layer's attention window; 0: it sees every earlier token
  bool has_sliding_layers() const;
  int64_t kv_dim() const { return num_key_value_heads * head_dim; }
  // Rotary inverse frequencies [rotary_dim()/2] with rope_scaling applied (as HF's rope init).
  // long_context: a longrope model's long factors.
  std::vector<float> inv_freq(bool long_context = false) const;
  // The sliding layers' own frequencies (layer_has_own_rope): rope_local_theta's, unscaled.
  std::vector<float> local_inv_freq() const;
  int64_t rotary_dim() const;  // head_dim * partial_rotary_factor
  double rope_attention_factor() const;  // yarn / longrope's factor on cos and sin (1 otherwise)
  bool layer_rotates(int64_t layer) const { return skip_rope.empty() || !skip_rope[size_t(layer)]; }
  bool layer_has_own_rope(int64_t layer) const { return rope_local_theta > 0 && window(layer) > 0; }
  int64_t num_parameters() const;
};

// Reads config.json fields; every error names the file and the field.
struct ConfigReader {
  const nlohmann::json& j;
  const std::string& path;
  bool has(const char* key) const { return j.contains(key) && !j[key].is_null(); }
  int64_t get_int(const char* key, int64_t fallback, bool required = false) const;
  double get_num(const char* key, double fallback) const;
  bool get_bool(const char* key, bool fallback) const;
  std::string get_str(const char* key, const std::string& fallback) const;
  // hidden_act (absent: `want`) must be `want`.
  void require_act(const std::string& want) const;
  // c.layer_types from `layer_types` when given (each "full_attention" or "sliding_attention", one
  // per layer), else layer i is sliding where sliding(i) says so; all full when c.sliding_window is 0.
  void read_layer_types(ModelConfig& c, const std::function<bool(int64_t layer)>& sliding) const;
};

// `path` names the file in error messages.
ModelConfig parse_config(const nlohmann::json& j, const std::string& path = "config.json");
ModelConfig load_config(const std::string& model_dir);
nlohmann::json config_to_json(const ModelConfig& c);

}  // namespace forge::models
