// Qwen2ForCausalLM (Qwen2, Qwen2.5): the shared decoder with a bias on q, k and v (not o).
#include "models/registry.h"

namespace forge::models {
namespace {
void parse(const ConfigReader& r, ModelConfig& c) {
  r.require_act("silu");
  c.attention_bias = true;
  read_qwen_windows(r, c);
}
void write(const ModelConfig& c, nlohmann::json& j) {
  j["hidden_act"] = "silu";
  write_qwen_windows(c, j);
}
void defaults(ModelConfig& c) {
  c.rope_theta = 1000000.0;
  c.attention_bias = true;
}
}  // namespace

// As transformers' Qwen2Config: sliding_window counts only with use_sliding_window.
void read_qwen_windows(const ConfigReader& r, ModelConfig& c) {
  c.sliding_window = r.get_bool("use_sliding_window", false) ? r.get_int("sliding_window", 4096) : 0;
  const int64_t first = r.get_int("max_window_layers", c.num_hidden_layers);
  r.read_layer_types(c, [first](int64_t i) { return i >= first; });
}

void write_qwen_windows(const ModelConfig& c, nlohmann::json& j) {
  const bool sliding = c.has_sliding_layers();
  j["use_sliding_window"] = sliding;
  j["sliding_window"] = sliding ? nlohmann::json(c.sliding_window) : nlohmann::json(nullptr);
  int64_t first = c.num_hidden_layers;
  for (int64_t i = c.num_hidden_layers - 1; i >= 0; --i)
    if (c.window(i) > 0) first = i;
  j["max_window_layers"] = first;
}

extern const Architecture kQwen2{"Qwen2ForCausalLM", "qwen2", parse, write, defaults};

}  // namespace forge::models
