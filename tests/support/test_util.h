// Helpers shared by test suites: error measures and small model directories made on the fly.
#pragma once
#include <string>
#include <vector>

#include "core/tensor.h"

namespace forge::testing {

// max |a - b| / max |b| over all elements (any dtype, any layout).
double rel_error(const std::vector<float>& a, const std::vector<float>& b);
double rel_error(const Tensor& got, const Tensor& want);

// A random tiny Llama (dim 64, 2 layers, GQA) with Forge's byte-level BPE tokenizer and its
// Llama 3 chat template, written as a Hugging Face directory. init_std 0.2 gives logits with
// some range, so adapters and finetunes have something to move.
void make_tiny_model_dir(const std::string& dir, uint64_t seed = 7, double init_std = 0.2);

// A fresh empty directory under the system temp dir, unique to the process (removed first if it exists).
std::string fresh_temp_dir(const std::string& name);

}  // namespace forge::testing
