// Single-sequence generation with a contiguous KV cache: prefill the prompt, then decode one
// token at a time until a stop id or max_new_tokens. (The batched, paged engine for serving
// lives beside it and shares the sampler.)
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "infer/sampler.h"
#include "models/causal_lm.h"

namespace forge::infer {

struct GenerateOptions {
  int64_t max_new_tokens = 128;
  SamplingParams sampling;
  std::vector<int64_t> stop_ids;          // generation ends after emitting one (it is included)
  std::function<bool(int64_t)> on_token;  // called per new token; return false to stop
};

struct GenerateResult {
  std::vector<int64_t> tokens;  // new tokens only
  std::string finish_reason;    // "stop" | "length"
  double prefill_seconds = 0, decode_seconds = 0;
};

GenerateResult generate(models::CausalLM& model, const std::vector<int64_t>& prompt, const GenerateOptions& opt);

}  // namespace forge::infer
