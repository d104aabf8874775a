// Helpers shared by test suites: error measures and small model directories made on the fly.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "peft/lora.h"

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

// A training oracle's output directory, written beside FORGE_OPTIM_REFERENCE's file by its CTest
// fixture ("" when the variable is unset: the test then skips).
std::string train_reference_dir(const std::string& name);

// Every lora_A / lora_B gradient of `lora` against ref[prefix + "grad/<module>.lora_{A,B}.weight"]
// within relative `tol`; returns how many were checked.
int expect_lora_grads(const peft::LoraModel& lora, const std::map<std::string, Tensor>& ref, const std::string& prefix,
                      double tol);

}  // namespace forge::testing
