// LoRA (Hu et al. 2021) on nn::Linear: y = W x + scale * B A dropout(x), attached by module name
// as PEFT does it, so model files never change for an adapter. rsLoRA scales by alpha/sqrt(r).
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/nn.h"

namespace forge::peft {

struct LoraConfig {
  int64_t r = 8;
  double alpha = 16.0;
  double dropout = 0.0;
  bool use_rslora = false;
  // PEFT's matching: each entry matches a module named exactly so or ending in "." + entry;
  // "all-linear" matches every Linear but the output layer. target_regex (when set) must match
  // the whole dotted name instead.
  std::vector<std::string> target_modules{"q_proj", "k_proj", "v_proj", "o_proj"};
  std::string target_regex;
  std::string base_model_name_or_path;
  double scale(int64_t rank) const;  // alpha / r, or alpha / sqrt(r) with rsLoRA
};

class LoraAdapter : public nn::LinearAdapter {
 public:
  // A: kaiming-uniform as PEFT (bound 1/sqrt(in)); B: zeros, so a new adapter changes nothing.
  LoraAdapter(int64_t in, int64_t out, int64_t r, double scale, double dropout, Generator* gen);
  // x [..., in] -> [..., out] in x's dtype; the adapter computes in its own dtype (f32).
  Tensor forward(const Tensor& x) override;
  Tensor A;  // lora_A.weight [r, in], f32, trainable
  Tensor B;  // lora_B.weight [out, r], f32, trainable
  double scale, dropout;
  bool training = true;
  bool enabled = true;  // off: the layer computes its base alone (DPO's reference model)
  Generator* gen;  // dropout masks (owned by the LoraModel)
  // Under tensor parallelism, split like the base weight: Columns keeps A whole and splits B's
  // rows; Rows splits A's columns and keeps B whole (parallel/tensor_parallel.cpp sets these).
  nn::Split split = nn::Split::None;
  std::shared_ptr<const nn::TensorParallel> tp;
};

// The adapters attached to one model, by module name ("model.layers.0.self_attn.q_proj").
struct LoraModel {
  LoraConfig config;
  std::vector<std::pair<std::string, std::shared_ptr<LoraAdapter>>> adapters;
  std::shared_ptr<Generator> gen = std::make_shared<Generator>(0);

  // PEFT tensor names: base_model.model.<module>.lora_A.weight / .lora_B.weight.
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<Tensor> parameters() const;
  void train(bool on);
  void set_enabled(bool on);  // every adapter on or off
};

// PEFT's name rule: `name` is `entry` or ends with "." + entry ("model.layers.0.self_attn.q_proj" ~ "q_proj").
bool module_matches(const std::string& name, const std::string& entry);

// Names of the Linear modules of `model` the config targets (error when none match).
std::vector<std::string> match_targets(const nn::Module& model, const LoraConfig& cfg);
// Freezes every parameter of model and attaches fresh adapters (A drawn from seed).
LoraModel apply_lora(nn::Module& model, const LoraConfig& cfg, uint64_t seed);
// W += scale * B A for every adapter (in f32, stored in W's dtype) and detaches the adapters.
void merge_lora(nn::Module& model, LoraModel& lora);

}  // namespace forge::peft
