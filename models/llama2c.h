// Reads a llama2.c checkpoint (legacy v0 float32 format, e.g. Karpathy's stories260K) into the
// HF-layout model: wq/wk rows are permuted from adjacent-pair RoPE to HF's rotate_half.
#pragma once
#include <memory>
#include <string>

#include "models/causal_lm.h"

namespace forge::models {

std::shared_ptr<CausalLM> load_llama2c(const std::string& path);

}  // namespace forge::models
