// A decoder-only model's shape and options, read from (and written to) a HF `config.json`. The
// common fields are read here; each architecture (models/registry.h) reads its own and sets the
// shared decoder's options (models/causal_lm.h). Unsupported architectures and values are errors
// that name the file and the field.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace forge::models {

struct RopeScaling {
  std::string type = "default";  // default | linear | llama3
  double factor = 1.0;
  double low_freq_factor = 1.0, high_freq_factor = 4.0;  // llama3
  int64_t original_max_position_embeddings = 8192;        // llama3
};

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
  int64_t sliding_window = 0;   // 0: none (Mistral's window is enforced as a context limit)
  int64_t bos_token_id = -1;
  std::vector<int64_t> eos_token_ids;
  DType dtype = DType::F32;     // torch_dtype

  int64_t q_dim() const { return num_attention_heads * head_dim; }
  int64_t kv_dim() const { return num_key_value_heads * head_dim; }
  // Rotary inverse frequencies [head_dim/2] with rope_scaling applied (as HF's rope init).
  std::vector<float> inv_freq() const;
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
};

// `path` names the file in error messages.
ModelConfig parse_config(const nlohmann::json& j, const std::string& path = "config.json");
ModelConfig load_config(const std::string& model_dir);
nlohmann::json config_to_json(const ModelConfig& c);

}  // namespace forge::models
