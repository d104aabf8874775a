// Flash-style causal attention on the CPU: tiles of Br queries x Bc keys, online softmax,
// never more than one tile of scores per thread. Grouped-query heads; optional document ids.
#pragma once
#include <cmath>
#include <cstdint>

namespace forge::cpu {

struct AttnShape {
  int64_t B, Hq, Hkv, T, S, D;
  float scale;
  bool causal;         // key j visible to query i iff j <= i + (S - T)
  const int32_t* doc;  // optional [B, T] (T == S): key j visible iff doc[b,j] == doc[b,i]
  int64_t window = 0;  // sliding window (causal only): also j > i + (S - T) - window, so a query
                       // sees `window` keys counting itself (HF's rule); 0: every earlier key
  float softcap = 0;   // Gemma 2's logit soft-cap: scaled scores become softcap * tanh(s / softcap)
};

// Soft-caps n scores in place; deriv (optional) gets d(capped)/d(score) = 1 - tanh^2.
inline void soft_cap(float* s, int64_t n, float cap, float* deriv) {
  for (int64_t c = 0; c < n; ++c) {
    const float t = std::tanh(s[c] / cap);
    s[c] = cap * t;
    if (deriv) deriv[c] = 1.0f - t * t;
  }
}

// The keys [first, last) query i (of T, over S keys) may see under the causal mask and window.
inline void visible_keys(const AttnShape& s, int64_t i, int64_t& first, int64_t& last) {
  const int64_t p = i + (s.S - s.T);  // the query's position among the keys
  last = s.causal ? p + 1 : s.S;
  first = s.causal && s.window > 0 ? p + 1 - s.window : 0;
  if (first < 0) first = 0;
  if (last > s.S) last = s.S;
}

// Element strides of a [B, H, L, D] operand (last dim contiguous).
struct AttnStrides {
  int64_t b, h, l;
};

// o [B, Hq, T, D] contiguous; lse [B, Hq, T] (log-sum-exp of each score row, for backward).
void attention_fwd(const AttnShape& s, const float* q, AttnStrides qs, const float* k, AttnStrides ks,
                   const float* v, AttnStrides vs, float* o, float* lse);

// dq [B, Hq, T, D], dk/dv [B, Hkv, S, D], all contiguous and written (not accumulated).
// o/do are contiguous [B, Hq, T, D].
void attention_bwd(const AttnShape& s, const float* q, AttnStrides qs, const float* k, AttnStrides ks,
                   const float* v, AttnStrides vs, const float* o, const float* dout, const float* lse, float* dq,
                   float* dk, float* dv);

}  // namespace forge::cpu
