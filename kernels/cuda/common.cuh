// Shared CUDA helpers: error checks and the per-device stream every Forge kernel runs on.
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#define FORGE_CUDA_CHECK(expr)                                                                      \
  do {                                                                                              \
    cudaError_t err_ = (expr);                                                                      \
    if (err_ != cudaSuccess)                                                                        \
      throw std::runtime_error(std::string("CUDA error: ") + cudaGetErrorString(err_) + " at " #expr); \
  } while (0)

namespace forge::cuda::gpu {
// Threads for a block that strides over n elements: n rounded up to whole warps, 32 .. cap.
inline int block_threads(int64_t n, int cap) {
  const int64_t t = (n + 31) / 32 * 32;
  return int(t < 32 ? 32 : (t > cap ? cap : t));
}

// The stream Forge uses on `device` (created on first use); also makes `device` current.
cudaStream_t stream_for(int device);
}  // namespace forge::cuda::gpu

namespace forge::cuda::gpu {
// Sum / max over a thread block (blockDim.x a multiple of 32, at most 1024); every thread gets the
// result. `scratch` is 32 floats of shared memory; the calls synchronise, so call from all threads.
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
template <bool kMax>
__device__ __forceinline__ float block_reduce(float v, float* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  v = kMax ? warp_max(v) : warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : (kMax ? -INFINITY : 0.0f);
  return kMax ? warp_max(v) : warp_sum(v);
}
__device__ __forceinline__ float block_sum(float v, float* scratch) { return block_reduce<false>(v, scratch); }
__device__ __forceinline__ float block_max(float v, float* scratch) { return block_reduce<true>(v, scratch); }
}  // namespace forge::cuda::gpu
