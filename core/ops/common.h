// Helpers shared by the op files: broadcasting, dim wrapping, and device dispatch of the
// elementwise kernels (no autograd here; the op files record nodes).
#pragma once
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/elementwise_ops.h"

namespace forge::detail {

int64_t wrap_dim(int64_t d, int64_t ndim);
Shape broadcast_shapes(const Shape& a, const Shape& b);
// Element strides that read t as if it were expanded to `out` (0 on broadcast dims).
Shape broadcast_strides(const Tensor& t, const Shape& out);
void check_same_device(const Tensor& a, const Tensor& b, const char* op);

// out = op(x, s); out is new unless given (then written in place, shape must match).
Tensor unary_kernel(UnaryOp op, const Tensor& x, float s = 0.0f, Tensor out = Tensor());
// out = op(a, b) with broadcasting and dtype promotion.
Tensor binary_kernel(BinaryOp op, const Tensor& a, const Tensor& b, Tensor out = Tensor());
// dst = src (broadcast to dst's shape, converted to dst's dtype), any devices.
void copy_into(const Tensor& dst, const Tensor& src);

// Sum g over the dims that broadcasting added, so it has `shape` (autograd helper).
Tensor sum_to(const Tensor& g, const Shape& shape);

// Runs a kernel family on `dev`: cpu_fn(args...) on the host, cuda_fn(args..., device index) on a
// GPU (the CUDA twins take the CPU contract plus the device; kernels/cuda/cuda_backend.h).
template <class CpuFn, class CudaFn, class... A>
decltype(auto) run_kernel(Device dev, CpuFn&& cpu_fn, CudaFn&& cuda_fn, A&&... args) {
  if (dev.is_cuda()) return cuda_fn(std::forward<A>(args)..., dev.index);
  return cpu_fn(std::forward<A>(args)...);
}

// Runs an op that has no CUDA kernel yet on host copies (differentiable), once-per-op notice.
void note_host_fallback(const char* op);

}  // namespace forge::detail
