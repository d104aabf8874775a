// Row reductions written lane-wise (16 partial results folded at the end) so that GCC emits
// vector code: it leaves a plain float max or sum loop scalar, one dependent instruction per
// element, because reordering would change NaN handling or rounding.
#pragma once
#include <cstdint>
#include <limits>

#include "kernels/elementwise_ops.h"
#include "kernels/types.h"

namespace forge::cpu {

constexpr int kReduceLanes = 16;

// max(init, x[0], ..., x[n-1]); NaN elements are skipped, as std::max(m, x) and std::fmax skip them.
template <typename T>
float row_max(const T* x, int64_t n, float init = -std::numeric_limits<float>::infinity()) {
  float lane[kReduceLanes];
  for (float& l : lane) l = init;
  int64_t i = 0;
  for (; i + kReduceLanes <= n; i += kReduceLanes)
#pragma omp simd
    for (int l = 0; l < kReduceLanes; ++l) {
      const float v = load_f32(x + i + l);
      lane[l] = v > lane[l] ? v : lane[l];
    }
  for (int l = 0; i + l < n; ++l) {
    const float v = load_f32(x + i + l);
    lane[l] = v > lane[l] ? v : lane[l];
  }
  float m = lane[0];
  for (int l = 1; l < kReduceLanes; ++l) m = lane[l] > m ? lane[l] : m;
  return m;
}

// f(x[0]) + ... + f(x[n-1]): 16 lane sums folded pairwise, then the tail.
template <typename T, class F>
float lane_sum(const T* x, int64_t n, F f) {
  float lane[kReduceLanes] = {};
  int64_t i = 0;
  for (; i + kReduceLanes <= n; i += kReduceLanes)
#pragma omp simd
    for (int l = 0; l < kReduceLanes; ++l) lane[l] += f(load_f32(x + i + l));
  float tail = 0.0f;
  for (; i < n; ++i) tail += f(load_f32(x + i));
  for (int w = kReduceLanes / 2; w >= 1; w /= 2)
    for (int l = 0; l < w; ++l) lane[l] += lane[l + w];
  return lane[0] + tail;
}

template <typename T>
float row_sum(const T* x, int64_t n) {
  return lane_sum(x, n, [](float v) { return v; });
}

template <typename T>
float row_sum_squares(const T* x, int64_t n) {
  return lane_sum(x, n, [](float v) { return v * v; });
}

// row[i] = exp(row[i] - m) in place; returns their sum, added in 16 lanes then folded in order
// (the same bits on every run and thread count).
inline float exp_shifted_sum(float* row, int64_t n, float m) {
  float lane[kReduceLanes] = {};
  int64_t i = 0;
  for (; i + kReduceLanes <= n; i += kReduceLanes)
#pragma omp simd
    for (int l = 0; l < kReduceLanes; ++l) {
      row[i + l] = exp_f32(row[i + l] - m);
      lane[l] += row[i + l];
    }
  for (int l = 0; i + l < n; ++l) {
    row[i + l] = exp_f32(row[i + l] - m);
    lane[l] += row[i + l];
  }
  float s = 0.0f;
  for (float l : lane) s += l;
  return s;
}

}  // namespace forge::cpu
