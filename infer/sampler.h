// Choosing the next token from logits: greedy (temperature 0), temperature, top-k, top-p.
// Seeded per request with a generator whose draws are the same on every machine.
#pragma once
#include <cstdint>

namespace forge::infer {

struct SamplingParams {
  double temperature = 1.0;  // 0: greedy
  int64_t top_k = 0;         // 0: all tokens
  double top_p = 1.0;
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

}  // namespace forge::infer
