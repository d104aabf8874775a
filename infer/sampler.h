// Choosing the next token from logits. Order: penalties, logit bias, temperature, top-k, top-p,
// min-p, draw.
// Each request owns a generator seeded by its seed, and a draw uses exactly one uniform number,
// so a seeded request gives the same tokens whatever else shares its batch.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

namespace forge::infer {

struct SamplingParams {
  double temperature = 1.0;  // 0: greedy
  int64_t top_k = 0;         // 0 (or -1): all tokens
  double top_p = 1.0;
  double min_p = 0.0;                // drop tokens below min_p * (probability of the likeliest)
  double repetition_penalty = 1.0;   // > 1: tokens of the prompt or output become less likely (HF rule)
  double presence_penalty = 0.0;     // OpenAI: minus this once for every token already generated
  double frequency_penalty = 0.0;    // OpenAI: minus this times the token's count in the output
  std::vector<std::pair<int64_t, float>> logit_bias;  // OpenAI: (token, added to its logit); -100 bans it
  uint64_t seed = 0;
};

// splitmix64: tiny, fully specified, so a seed gives the same draws everywhere.
struct Rng {
  uint64_t state;
  explicit Rng(uint64_t seed) : state(seed) {}
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }  // [0, 1)
};

// logits [V] (f32). Ties in greedy go to the lowest id (as torch.argmax).
int64_t sample_token(const float* logits, int64_t V, const SamplingParams& p, Rng& rng);
int64_t argmax(const float* logits, int64_t V);

// Repetition, presence and frequency penalties, then the logit bias, applied in place (vLLM's
// semantics: repetition over prompt and output tokens, presence/frequency over output tokens only).
void apply_penalties(float* logits, int64_t V, const SamplingParams& p, const std::vector<int64_t>& prompt,
                     const std::vector<int64_t>& output);

// log-softmax of the raw logits at `token`, and the top_n (token, logprob) pairs, likeliest first.
struct TokenLogprob {
  int64_t token = 0;
  float logprob = 0;
  std::vector<std::pair<int64_t, float>> top;
};
TokenLogprob token_logprob(const float* logits, int64_t V, int64_t token, int64_t top_n);

}  // namespace forge::infer
