// Loading and saving a model as a Hugging Face directory: config.json, model.safetensors (or
// shards + index) and generation_config.json.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "models/causal_lm.h"

namespace forge::models {

// dtype: the compute dtype (default: the checkpoint's torch_dtype). Tensors whose dtype already
// matches are used in place from the memory-mapped file. Missing, unexpected and mis-shaped
// tensors are reported by name, all at once.
std::shared_ptr<CausalLM> load_model(const std::string& dir, std::optional<DType> dtype = std::nullopt,
                                     Device device = Device::cpu());

// Writes config.json (torch_dtype = the model's dtype), the weights and generation_config.json.
void save_model(const CausalLM& model, const std::string& dir, size_t max_shard_bytes = 0);

// Copies the files beside the weights that make a directory usable (tokenizer files, chat
// template, generation_config.json) from one model directory to another; absent ones are skipped.
void copy_model_files(const std::string& from, const std::string& to);

// The sampling a model's creator recommends in generation_config.json, as vLLM's default
// `--generation-config auto` reads it: the fields a request leaves out take these. Unset where the
// file (or the whole file) gives none; do_sample is not read (vLLM does not either).
struct GenerationDefaults {
  std::optional<double> temperature, top_p, min_p, repetition_penalty;
  std::optional<int64_t> top_k, max_new_tokens;
  bool empty() const {
    return !temperature && !top_p && !min_p && !repetition_penalty && !top_k && !max_new_tokens;
  }
  std::string describe() const;  // "temperature 0.6, top_p 0.95, ..." for start-up messages
};
// A value of the wrong type or out of range is an error naming the file and key.
GenerationDefaults generation_defaults(const std::string& dir);
// What `--generation-config CHOICE` gives: "auto" reads model_dir's file, "none" nothing, anything
// else is a directory that must hold one.
GenerationDefaults generation_defaults(const std::string& choice, const std::string& model_dir);

// The ids that end generation: generation_config.json's eos_token_id (int or list) together
// with config.json's, without repeats.
std::vector<int64_t> stop_token_ids(const std::string& dir, const ModelConfig& cfg);

}  // namespace forge::models
