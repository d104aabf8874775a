// Prefill + decode loop over a contiguous KV cache (see generate.h).
#include "infer/generate.h"

#include <algorithm>
#include <chrono>

#include "core/autograd.h"

namespace forge::infer {
namespace {
double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

GenerateResult generate(models::CausalLM& model, const std::vector<int64_t>& prompt, const GenerateOptions& opt) {
  FORGE_CHECK(!prompt.empty(), "generate: the prompt needs at least one token (start from BOS)");
  NoGradGuard ng;
  const models::ModelConfig& c = model.config();
  const int64_t total = int64_t(prompt.size()) + opt.max_new_tokens;
  FORGE_CHECK(total <= c.max_position_embeddings, "generate: prompt (", prompt.size(), " tokens) + max tokens (",
              opt.max_new_tokens, ") exceed the model's context of ", c.max_position_embeddings);
  const Device dev = model.lm_head_weight().device();
  models::KVCache cache = models::KVCache::create(c, 1, total, model.dtype(), dev);
  models::ForwardOptions fo;
  fo.cache = &cache;
  fo.last_only = true;
  Rng rng(opt.sampling.seed);
  GenerateResult res;
  res.finish_reason = "length";

  double t0 = now();
  // ids stay on the host: the embedding checks them there and copies them over once.
  Tensor ids = Tensor::from_vector(prompt, {1, int64_t(prompt.size())});
  for (int64_t step = 0; step < opt.max_new_tokens; ++step) {
    std::vector<float> logits = model.forward(ids, fo).to_float_vector();
    if (step == 0) res.prefill_seconds = now() - t0;
    int64_t tok = sample_token(logits.data(), int64_t(logits.size()), opt.sampling, rng);
    res.tokens.push_back(tok);
    if (opt.on_token && !opt.on_token(tok)) {
      res.finish_reason = "stop";
      break;
    }
    if (std::find(opt.stop_ids.begin(), opt.stop_ids.end(), tok) != opt.stop_ids.end()) {
      res.finish_reason = "stop";
      break;
    }
    if (step + 1 < opt.max_new_tokens) ids = Tensor::from_vector(std::vector<int64_t>{tok}, {1, 1});
  }
  res.decode_seconds = now() - t0 - res.prefill_seconds;
  return res;
}

}  // namespace forge::infer
