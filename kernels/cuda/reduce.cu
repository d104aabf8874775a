// CUDA row and column reductions with f32 accumulation: the contracts of kernels/cpu/reduce.h on
// device pointers. A NaN anywhere makes a max NaN, as on the CPU.
#include <cstdint>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/gpu.h"

namespace forge::cuda::gpu {
namespace {
constexpr int kThreads = 256;

// x [M, R] -> out [M], one block per row.
template <typename T, bool kMax>
__global__ void rows_kernel(const T* x, int64_t R, float* out) {
  __shared__ float scratch[32];
  const T* xr = x + blockIdx.x * R;
  float acc = kMax ? -INFINITY : 0.0f, nan = 0.0f;
  for (int64_t i = threadIdx.x; i < R; i += blockDim.x) {
    const float v = load_f32(xr + i);
    if (kMax) {
      acc = fmaxf(acc, v);
      nan += v != v ? 1.0f : 0.0f;
    } else {
      acc += v;
    }
  }
  if (kMax) {
    acc = block_max(acc, scratch);
    nan = block_sum(nan, scratch);
    if (threadIdx.x == 0) out[blockIdx.x] = nan > 0.0f ? NAN : acc;
  } else {
    acc = block_sum(acc, scratch);
    if (threadIdx.x == 0) out[blockIdx.x] = acc;
  }
}

// x [R, M] -> out [M]: a thread per column walks the rows (consecutive threads read consecutive
// columns, so each row's read is coalesced).
template <typename T, bool kMax>
__global__ void cols_kernel(const T* x, int64_t R, int64_t M, float* out) {
  const int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= M) return;
  float acc = kMax ? -INFINITY : 0.0f;
  for (int64_t r = 0; r < R; ++r) {
    const float v = load_f32(x + r * M + c);
    acc = kMax ? ((v > acc || v != v) ? v : acc) : acc + v;
    if (kMax && acc != acc) break;
  }
  out[c] = acc;
}
}  // namespace

void reduce_rows(cpu::ReduceOp op, DType dt, const void* x, int64_t M, int64_t R, float* out, int device) {
  if (M == 0) return;
  cudaStream_t s = stream_for(device);
  const int threads = block_threads(R, kThreads);
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    const T* xs = static_cast<const T*>(x);
    if (op == cpu::ReduceOp::Max) rows_kernel<T, true><<<unsigned(M), threads, 0, s>>>(xs, R, out);
    else rows_kernel<T, false><<<unsigned(M), threads, 0, s>>>(xs, R, out);
  });
  FORGE_CUDA_CHECK(cudaGetLastError());
}

void reduce_cols(cpu::ReduceOp op, DType dt, const void* x, int64_t R, int64_t M, float* out, int device) {
  if (M == 0) return;
  cudaStream_t s = stream_for(device);
  const unsigned blocks = unsigned((M + kThreads - 1) / kThreads);
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    const T* xs = static_cast<const T*>(x);
    if (op == cpu::ReduceOp::Max) cols_kernel<T, true><<<blocks, kThreads, 0, s>>>(xs, R, M, out);
    else cols_kernel<T, false><<<blocks, kThreads, 0, s>>>(xs, R, M, out);
  });
  FORGE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace forge::cuda::gpu
