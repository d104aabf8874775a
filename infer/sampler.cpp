// Token sampling (see sampler.h).
#include "infer/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>

namespace forge::infer {

int64_t argmax(const float* logits, int64_t V) {
  // Per lane the first index of its largest value, then the lowest index among the lanes that hold
  // the overall maximum: the first maximum, as a scalar scan finds it, in vector code.
  constexpr int64_t L = 16;
  if (V < L) {
    int64_t best = 0;
    for (int64_t i = 1; i < V; ++i)
      if (logits[i] > logits[best]) best = i;
    return best;
  }
  float val[L];
  int64_t idx[L];
  for (int64_t l = 0; l < L; ++l) val[l] = logits[l], idx[l] = l;
  const int64_t full = V / L * L;
  for (int64_t i = L; i < full; i += L)
#pragma omp simd
    for (int64_t l = 0; l < L; ++l) {
      const bool gt = logits[i + l] > val[l];
      val[l] = gt ? logits[i + l] : val[l];
      idx[l] = gt ? i + l : idx[l];
    }
  int64_t best = idx[0];
  for (int64_t l = 1; l < L; ++l)
    if (val[l] > logits[best] || (val[l] == logits[best] && idx[l] < best)) best = idx[l];
  for (int64_t i = full; i < V; ++i)
    if (logits[i] > logits[best]) best = i;
  return best;
}

void apply_penalties(float* logits, int64_t V, const SamplingParams& p, const std::vector<int64_t>& prompt,
                     const std::vector<int64_t>& output) {
  if (p.repetition_penalty != 1.0) {
    std::vector<bool> seen(static_cast<size_t>(V), false);
    for (const auto* list : {&prompt, &output})
      for (int64_t t : *list)
        if (t >= 0 && t < V && !seen[size_t(t)]) {
          seen[size_t(t)] = true;
          float& l = logits[t];
          l = l > 0 ? float(l / p.repetition_penalty) : float(l * p.repetition_penalty);
        }
  }
  if (p.presence_penalty != 0.0 || p.frequency_penalty != 0.0) {
    std::unordered_map<int64_t, int64_t> count;
    for (int64_t t : output) ++count[t];
    for (auto [t, c] : count)
      if (t >= 0 && t < V) logits[t] -= float(p.frequency_penalty * double(c) + p.presence_penalty);
  }
  for (auto [t, b] : p.logit_bias)
    if (t >= 0 && t < V) logits[t] += b;
}

int64_t sample_token(const float* logits, int64_t V, const SamplingParams& p, Rng& rng) {
  if (p.temperature <= 0 || p.top_k == 1) return argmax(logits, V);
  const double mx = logits[argmax(logits, V)];
  std::vector<double> prob(static_cast<size_t>(V));
  for (int64_t i = 0; i < V; ++i) prob[size_t(i)] = std::exp((double(logits[i]) - mx) / p.temperature);
  const int64_t k = p.top_k > 0 ? std::min(p.top_k, V) : V;
  if (k == V && p.top_p >= 1.0 && p.min_p <= 0.0) {  // plain temperature sampling: no sort
    double r = rng.uniform() * std::accumulate(prob.begin(), prob.end(), 0.0);
    for (int64_t i = 0; i < V; ++i)
      if ((r -= prob[size_t(i)]) < 0) return i;
    return V - 1;
  }
  const double total = std::accumulate(prob.begin(), prob.end(), 0.0);
  // Candidates by probability (descending, ties by id). Sort only as many as top-k / top-p need:
  // grow the sorted head until it holds k tokens or p of the mass.
  std::vector<int64_t> idx(static_cast<size_t>(V));
  std::iota(idx.begin(), idx.end(), 0);
  auto by_prob = [&](int64_t a, int64_t b) {
    return prob[size_t(a)] > prob[size_t(b)] || (prob[size_t(a)] == prob[size_t(b)] && a < b);
  };
  int64_t n = std::min<int64_t>(k, 64);
  for (;;) {
    std::partial_sort(idx.begin(), idx.begin() + n, idx.end(), by_prob);
    double head = 0;
    for (int64_t i = 0; i < n; ++i) head += prob[size_t(idx[size_t(i)])];
    if (n == k || head / total >= p.top_p) break;
    n = std::min(k, n * 16);
  }
  double acc = 0;
  int64_t keep = n;
  for (int64_t i = 0; i < n; ++i) {  // top-p: the smallest prefix whose mass reaches p
    acc += prob[size_t(idx[size_t(i)])] / total;
    if (p.top_p < 1.0 && acc >= p.top_p) {
      keep = i + 1;
      break;
    }
  }
  if (p.min_p > 0.0) {  // relative to the likeliest token, which is idx[0]
    const double floor = p.min_p * prob[size_t(idx[0])];
    int64_t m = 1;
    while (m < keep && prob[size_t(idx[size_t(m)])] >= floor) ++m;
    keep = m;
  }
  double mass = 0;
  for (int64_t i = 0; i < keep; ++i) mass += prob[size_t(idx[size_t(i)])];
  double r = rng.uniform() * mass;
  for (int64_t i = 0; i < keep; ++i)
    if ((r -= prob[size_t(idx[size_t(i)])]) < 0) return idx[size_t(i)];
  return idx[size_t(keep - 1)];
}

TokenLogprob token_logprob(const float* logits, int64_t V, int64_t token, int64_t top_n) {
  const float mx = logits[argmax(logits, V)];
  double sum = 0;
  for (int64_t i = 0; i < V; ++i) sum += std::exp(double(logits[i]) - mx);
  const float lse = mx + float(std::log(sum));
  TokenLogprob out;
  out.token = token;
  out.logprob = logits[token] - lse;
  top_n = std::min(top_n, V);
  if (top_n > 0) {
    std::vector<int64_t> idx(static_cast<size_t>(V));
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + top_n, idx.end(),
                      [&](int64_t a, int64_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
    for (int64_t i = 0; i < top_n; ++i) out.top.push_back({idx[size_t(i)], logits[idx[size_t(i)]] - lse});
  }
  return out;
}

}  // namespace forge::infer
