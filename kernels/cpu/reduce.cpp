// Row and column reductions: 16 partial accumulators per row keep f32 sums accurate and vectorised.
#include "kernels/cpu/reduce.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "kernels/cpu/row_reduce.h"

namespace forge::cpu {
namespace {

// The maximum, NaN if any element is NaN (as torch.max); rare enough to stay scalar.
template <typename T>
float row_max_nan(const T* x, int64_t R) {
  float m = -std::numeric_limits<float>::infinity();
  bool nan = false;
  for (int64_t i = 0; i < R; ++i) {
    float v = load_f32(x + i);
    nan |= v != v;
    m = v > m ? v : m;
  }
  return nan ? std::numeric_limits<float>::quiet_NaN() : m;
}

template <typename T>
void rows_t(ReduceOp op, const T* x, int64_t M, int64_t R, float* out) {
#pragma omp parallel for schedule(static) if (M * R > 32768 && M > 1)
  for (int64_t m = 0; m < M; ++m) out[m] = op == ReduceOp::Sum ? row_sum(x + m * R, R) : row_max_nan(x + m * R, R);
}

template <typename T>
void cols_t(ReduceOp op, const T* x, int64_t R, int64_t M, float* out) {
  // Each thread owns a band of columns and walks the rows: contiguous, vectorised, no races.
  const int64_t band = 256;
#pragma omp parallel for schedule(static) if (M * R > 32768)
  for (int64_t c0 = 0; c0 < M; c0 += band) {
    int64_t c1 = std::min(M, c0 + band);
    float acc[256];
    for (int64_t c = c0; c < c1; ++c)
      acc[c - c0] = op == ReduceOp::Sum ? 0.0f : -std::numeric_limits<float>::infinity();
    for (int64_t r = 0; r < R; ++r) {
      const T* row = x + r * M;
      if (op == ReduceOp::Sum)
        for (int64_t c = c0; c < c1; ++c) acc[c - c0] += load_f32(row + c);
      else
        for (int64_t c = c0; c < c1; ++c) {
          float v = load_f32(row + c);
          acc[c - c0] = (v > acc[c - c0] || v != v) ? v : acc[c - c0];
        }
    }
    for (int64_t c = c0; c < c1; ++c) out[c] = acc[c - c0];
  }
}

}  // namespace

void reduce_rows(ReduceOp op, DType dt, const void* x, int64_t M, int64_t R, float* out) {
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    rows_t(op, static_cast<const T*>(x), M, R, out);
  });
}

void reduce_cols(ReduceOp op, DType dt, const void* x, int64_t R, int64_t M, float* out) {
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    cols_t(op, static_cast<const T*>(x), R, M, out);
  });
}

}  // namespace forge::cpu
