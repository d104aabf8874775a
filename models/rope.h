// Rotary position embeddings as transformers computes them (modeling_rope_utils.py): the inverse
// frequencies of each rope_type over a head's rotary dims, and the attention factor that yarn and
// longrope multiply cos and sin by. `dynamic` (NTK scaling that changes with the sequence) is
// refused: its frequencies would differ between a prompt and its continuation.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace forge::models {

struct RopeScaling {
  std::string type = "default";  // default | linear | llama3 | yarn | longrope
  double factor = 1.0;           // 0 for yarn/longrope: max_position_embeddings / original's
  double low_freq_factor = 1.0, high_freq_factor = 4.0;  // llama3
  int64_t original_max_position_embeddings = 8192;        // llama3, yarn, longrope (0: max_position_embeddings)
  double beta_fast = 32, beta_slow = 1;                   // yarn
  bool truncate = true;                                   // yarn
  double mscale = 0, mscale_all_dim = 0;                  // yarn (DeepSeek's attention factor)
  double attention_factor = 0;                            // yarn, longrope; 0: the paper's default
  std::vector<double> short_factor, long_factor;          // longrope, one per frequency
};

// Reads one rope description (rope_scaling, or a transformers 5 rope_parameters entry) into
// theta (when it has rope_theta) and s; `where` names it in errors ("config.json: rope_scaling ...").
void read_rope(const nlohmann::json& j, const std::string& where, double& theta, RopeScaling& s);
nlohmann::json rope_to_json(const RopeScaling& s);  // null for default

// Inverse frequencies [dim / 2] for `dim` rotary dims. longrope takes its long factors when
// long_context (a sequence past original_max_position_embeddings), else its short ones.
std::vector<float> rope_inv_freq(double theta, int64_t dim, const RopeScaling& s, int64_t max_position_embeddings,
                                 bool long_context = false);
// What yarn and longrope multiply cos and sin by (1 for the others).
double rope_attention_factor(const RopeScaling& s, int64_t max_position_embeddings);

}  // namespace forge::models
