// Fused optimiser kernels over many tensors at once (multi-tensor, as apex/PyTorch's foreach):
// one pass over each parameter's memory per step instead of a dozen elementwise ops, and on a GPU
// one launch for up to a few dozen tensors.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/types.h"

namespace forge::cpu {

// AdamW (decoupled weight decay) with bias corrections c1 = 1 - beta1^t, c2 = 1 - beta2^t; the
// gradient is read in its dtype and multiplied first by grad_scale and, when given, by *scale: a
// clip factor computed on the device, read there so that nothing waits for it.
struct AdamWHyper {
  float lr, beta1, beta2, eps, weight_decay, c1, c2, grad_scale;
  const float* scale;  // device memory (nullable)
};
// One parameter: p32 its f32 values (the parameter, or its master copy), m and v its moments, g
// its gradient; `lowp` the bf16/f16 parameter the master is rounded into after the update (null
// when p32 is the parameter itself). All of n elements, contiguous.
struct AdamWTensor {
  float* p32;
  const void* g;
  float* m;
  float* v;
  void* lowp;
  int64_t n;
};
void adamw_multi(const AdamWHyper& h, DType g_dt, DType lowp_dt, const AdamWTensor* ts, int64_t count);

// out[i] = sum of squares of tensor i: the pieces of a gradient norm. The CPU adds blocks of 4096
// in double, then the blocks in order, so the result does not depend on the thread count.
struct SquaresTensor {
  const void* x;
  int64_t n;
};
void sum_squares_multi(DType dt, const SquaresTensor* ts, int64_t count, float* out);

// The AdamW update of one element (scale: grad_scale times *scale), shared by the CPU and CUDA
// kernels so both compute the same sequence of f32 operations.
FORGE_HD float adamw_element(const AdamWHyper& h, float scale, float g, float& p, float& m, float& v) {
  g *= scale;
  m = h.beta1 * m + (1.0f - h.beta1) * g;
  v = h.beta2 * v + (1.0f - h.beta2) * g * g;
  const float update = (m / h.c1) / (sqrtf(v / h.c2) + h.eps);
  p = p * (1.0f - h.lr * h.weight_decay) - h.lr * update;
  return p;
}

}  // namespace forge::cpu
