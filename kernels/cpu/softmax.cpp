// Row softmax and cross-entropy: two passes over each row (max, then exp-sum), f32 math.
#include "kernels/cpu/softmax.h"

#include <cmath>
#include <limits>
#include <stdexcept>

#include "kernels/cpu/row_reduce.h"
#include "kernels/elementwise_ops.h"

namespace forge::cpu {
namespace {

// log(sum(exp(x - m))) + m, summed in lanes so the loop vectorises.
template <typename T>
float row_logsumexp(const T* x, int64_t V) {
  const float m = row_max(x, V);
  if (m == -std::numeric_limits<float>::infinity()) return m;
  return m + std::log(lane_sum(x, V, [m](float v) { return exp_f32(v - m); }));
}
}  // namespace

void softmax_rows(DType dt, const void* x, void* y, int64_t N, int64_t V, bool log) {
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    const T* xs = static_cast<const T*>(x);
    T* ys = static_cast<T*>(y);
#pragma omp parallel for schedule(static) if (N * V > 32768 && N > 1)
    for (int64_t n = 0; n < N; ++n) {
      const T* xr = xs + n * V;
      T* yr = ys + n * V;
      float lse = row_logsumexp(xr, V);
      if (log)
        for (int64_t i = 0; i < V; ++i) store_f32(yr + i, load_f32(xr + i) - lse);
      else
        for (int64_t i = 0; i < V; ++i) store_f32(yr + i, exp_f32(load_f32(xr + i) - lse));
    }
  });
}

int64_t cross_entropy_fwd(DType dt, const void* logits, const int64_t* target, int64_t N, int64_t V,
                          int64_t ignore, float* loss, float* lse) {
  for (int64_t n = 0; n < N; ++n)
    if (target[n] != ignore && (target[n] < 0 || target[n] >= V)) return n;
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    const T* xs = static_cast<const T*>(logits);
#pragma omp parallel for schedule(static) if (N * V > 32768 && N > 1)
    for (int64_t n = 0; n < N; ++n) {
      const T* xr = xs + n * V;
      if (target[n] == ignore) {
        loss[n] = 0.0f;
        lse[n] = 0.0f;
        continue;
      }
      lse[n] = row_logsumexp(xr, V);
      loss[n] = lse[n] - load_f32(xr + target[n]);
    }
  });
  return -1;
}

void cross_entropy_bwd(DType dt, const void* logits, const int64_t* target, const float* lse, const float* scale,
                       int64_t N, int64_t V, int64_t ignore, void* dlogits) {
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    const T* xs = static_cast<const T*>(logits);
    T* gs = static_cast<T*>(dlogits);
#pragma omp parallel for schedule(static) if (N * V > 32768 && N > 1)
    for (int64_t n = 0; n < N; ++n) {
      const T* xr = xs + n * V;
      T* gr = gs + n * V;
      if (target[n] == ignore) {
        for (int64_t i = 0; i < V; ++i) store_f32(gr + i, 0.0f);
        continue;
      }
      const float s = scale[n], l = lse[n];
      for (int64_t i = 0; i < V; ++i) store_f32(gr + i, exp_f32(load_f32(xr + i) - l) * s);
      store_f32(gr + target[n], (exp_f32(load_f32(xr + target[n]) - l) - 1.0f) * s);
    }
  });
}

}  // namespace forge::cpu
