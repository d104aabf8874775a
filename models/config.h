// The architecture of a Llama-family model, read from (and written to) a HF `config.json`.
// Covers LlamaForCausalLM (Llama 2/3/3.x, TinyLlama, SmolLM), MistralForCausalLM and
// Qwen2ForCausalLM. Unsupported architectures and values are errors that name the field.
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
  bool attention_bias = false;  // bias on q/k/v (always true for Qwen2)
  bool mlp_bias = false;
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

// `path` names the file in error messages.
ModelConfig parse_config(const nlohmann::json& j, const std::string& path = "config.json");
ModelConfig load_config(const std::string& model_dir);
nlohmann::json config_to_json(const ModelConfig& c);

}  // namespace forge::models
