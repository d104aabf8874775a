// Fused optimiser kernels on the CPU (see optim.h).
#include "kernels/cpu/optim.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace forge::cpu {
namespace {
template <typename G, typename L>
void adamw_one(const AdamWHyper& h, const AdamWTensor& t) {
  const G* g = static_cast<const G*>(t.g);
  L* lowp = static_cast<L*>(t.lowp);
  const float scale = h.grad_scale * (h.scale ? *h.scale : 1.0f);
#pragma omp parallel for schedule(static) if (t.n > 32768)
  for (int64_t i = 0; i < t.n; ++i) {
    const float p = adamw_element(h, scale, load_f32(g + i), t.p32[i], t.m[i], t.v[i]);
    if (lowp) store_f32(lowp + i, p);
  }
}
}  // namespace

void adamw_multi(const AdamWHyper& h, DType g_dt, DType lowp_dt, const AdamWTensor* ts, int64_t count) {
  dispatch_float(g_dt, [&](auto gt) {
    dispatch_float(lowp_dt, [&](auto lt) {
      for (int64_t i = 0; i < count; ++i) adamw_one<decltype(gt), decltype(lt)>(h, ts[i]);
    });
  });
}

void sum_squares_multi(DType dt, const SquaresTensor* ts, int64_t count, float* out) {
  constexpr int64_t kBlock = 4096;
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    for (int64_t k = 0; k < count; ++k) {
      const T* x = static_cast<const T*>(ts[k].x);
      const int64_t n = ts[k].n, blocks = (n + kBlock - 1) / kBlock;
      std::vector<double> part(size_t(blocks), 0.0);
#pragma omp parallel for schedule(static) if (blocks > 8)
      for (int64_t b = 0; b < blocks; ++b) {
        double acc = 0;
        for (int64_t i = b * kBlock; i < std::min(n, (b + 1) * kBlock); ++i) {
          const double v = load_f32(x + i);
          acc += v * v;
        }
        part[size_t(b)] = acc;
      }
      double total = 0;
      for (double p : part) total += p;
      out[k] = float(total);
    }
  });
}

}  // namespace forge::cpu
