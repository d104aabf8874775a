// A random model of a preset shape written as a complete Hugging Face directory: config.json,
// weights, generation_config.json and a byte-level BPE tokenizer of its own (or the files of an
// existing tokenizer). Used by `forge init-model` and by recipes with `model.init`.
#pragma once
#include <cstdint>
#include <string>

#include "models/config.h"

namespace forge::train {

struct InitModelOptions {
  std::string arch = "llama", preset = "tiny", dtype = "f32";
  std::string tokenizer_dir;  // "" : make a byte-level BPE tokenizer
  uint64_t seed = 0;
  double init_std = 0.02;
  size_t max_shard_bytes = 0;  // 0: one safetensors file
};

// Returns the written config.
models::ModelConfig init_random_model(const std::string& dir, const InitModelOptions& o);

}  // namespace forge::train
