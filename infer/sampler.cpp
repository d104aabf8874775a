// Token sampling (see sampler.h).
#include "infer/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace forge::infer {

int64_t argmax(const float* logits, int64_t V) {
  int64_t best = 0;
  for (int64_t i = 1; i < V; ++i)
    if (logits[i] > logits[best]) best = i;
  return best;
}

int64_t sample_token(const float* logits, int64_t V, const SamplingParams& p, Rng& rng) {
  if (p.temperature <= 0 || p.top_k == 1) return argmax(logits, V);
  // Candidates sorted by logit (descending, ties by id), cut by top-k.
  std::vector<int64_t> idx(V);
  std::iota(idx.begin(), idx.end(), 0);
  const int64_t k = p.top_k > 0 ? std::min(p.top_k, V) : V;
  auto by_logit = [&](int64_t a, int64_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), by_logit);
  idx.resize(k);
  std::vector<double> prob(k);
  const double mx = logits[idx[0]];
  double total = 0;
  for (int64_t i = 0; i < k; ++i) total += prob[i] = std::exp((logits[idx[i]] - mx) / p.temperature);
  // top-p: the smallest prefix whose mass reaches p (always at least one token).
  int64_t n = k;
  if (p.top_p < 1.0) {
    double acc = 0;
    for (int64_t i = 0; i < k; ++i) {
      acc += prob[i] / total;
      if (acc >= p.top_p) {
        n = i + 1;
        break;
      }
    }
  }
  double mass = std::accumulate(prob.begin(), prob.begin() + n, 0.0);
  double r = rng.uniform() * mass;
  for (int64_t i = 0; i < n; ++i) {
    r -= prob[i];
    if (r < 0) return idx[i];
  }
  return idx[n - 1];
}

}  // namespace forge::infer
