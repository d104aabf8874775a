// CUDA row softmax / log-softmax and fused cross-entropy: the contracts of kernels/cpu/softmax.h on
// device pointers. One thread block per row; the row's log-sum-exp in one pass with an online
// maximum, f32 throughout, so a [N, V] f32 copy of bf16 logits is never made.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/gpu.h"
#include "kernels/elementwise_ops.h"

namespace forge::cuda::gpu {
namespace {
constexpr int kThreads = 512;

// log(sum(exp(x))) over a row of V, every thread of the block gets it.
template <typename T>
__device__ float row_logsumexp(const T* x, int64_t V, float* scratch) {
  float m = -INFINITY, s = 0.0f;  // this thread's running max and sum of exp(x - m)
  for (int64_t i = threadIdx.x; i < V; i += blockDim.x) {
    const float v = load_f32(x + i);
    if (v > m) {
      s = s * expf(m - v) + 1.0f;
      m = v;
    } else if (v != -INFINITY) {  // a -inf entry adds nothing (and -inf - -inf would be NaN); NaN adds NaN
      s += expf(v - m);
    }
  }
  const float bm = block_max(m, scratch);
  const float total = block_sum(m == -INFINITY ? 0.0f : s * expf(m - bm), scratch);
  return bm == -INFINITY ? bm : bm + logf(total);
}

template <typename T>
__global__ void softmax_kernel(const T* x, T* y, int64_t V, bool log) {
  __shared__ float scratch[32];
  const T* xr = x + blockIdx.x * V;
  T* yr = y + blockIdx.x * V;
  const float lse = row_logsumexp(xr, V, scratch);
  for (int64_t i = threadIdx.x; i < V; i += blockDim.x) {
    const float v = load_f32(xr + i) - lse;
    store_f32(yr + i, log ? v : expf(v));
  }
}

template <typename T>
__global__ void cross_entropy_fwd_kernel(const T* logits, const int64_t* target, int64_t V, int64_t ignore, float* loss,
                                         float* lse) {
  __shared__ float scratch[32];
  const int64_t n = blockIdx.x, t = target[n];
  if (t == ignore) {
    if (threadIdx.x == 0) loss[n] = lse[n] = 0.0f;
    return;
  }
  const T* xr = logits + n * V;
  const float l = row_logsumexp(xr, V, scratch);
  if (threadIdx.x == 0) {
    lse[n] = l;
    loss[n] = l - load_f32(xr + t);
  }
}

template <typename T>
__global__ void cross_entropy_bwd_kernel(const T* logits, const int64_t* target, const float* lse, const float* scale,
                                         int64_t V, int64_t ignore, T* dlogits) {
  const int64_t n = blockIdx.x, t = target[n];
  const T* xr = logits + n * V;
  T* gr = dlogits + n * V;
  const bool skip = t == ignore;
  const float s = skip ? 0.0f : scale[n], l = skip ? 0.0f : lse[n];
  for (int64_t i = threadIdx.x; i < V; i += blockDim.x)
    store_f32(gr + i, skip ? 0.0f : (expf(load_f32(xr + i) - l) - (i == t ? 1.0f : 0.0f)) * s);
}

__global__ void first_bad_target_kernel(const int64_t* target, int64_t N, int64_t V, int64_t ignore,
                                        unsigned long long* first) {
  const int64_t n = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (n < N && target[n] != ignore && (target[n] < 0 || target[n] >= V))
    atomicMin(first, static_cast<unsigned long long>(n));
}

}  // namespace

void softmax_rows(DType dt, const void* x, void* y, int64_t N, int64_t V, bool log, int device) {
  if (N == 0 || V == 0) return;
  cudaStream_t s = stream_for(device);
  const int threads = block_threads(V, kThreads);
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    softmax_kernel<T><<<unsigned(N), threads, 0, s>>>(static_cast<const T*>(x), static_cast<T*>(y), V, log);
  });
  FORGE_CUDA_CHECK(cudaGetLastError());
}

int64_t cross_entropy_fwd(DType dt, const void* logits, const int64_t* target, int64_t N, int64_t V, int64_t ignore,
                          float* loss, float* lse, int device) {
  if (N == 0) return -1;
  cudaStream_t s = stream_for(device);
  // The caller reports a bad target by row, so find the first one before anything else runs.
  unsigned long long* first = static_cast<unsigned long long*>(alloc(sizeof(unsigned long long), device));
  const unsigned long long none = ~0ull;
  unsigned long long found = none;
  try {
    FORGE_CUDA_CHECK(cudaMemcpyAsync(first, &none, sizeof(none), cudaMemcpyHostToDevice, s));
    first_bad_target_kernel<<<unsigned((N + 255) / 256), 256, 0, s>>>(target, N, V, ignore, first);
    FORGE_CUDA_CHECK(cudaGetLastError());
    FORGE_CUDA_CHECK(cudaMemcpyAsync(&found, first, sizeof(found), cudaMemcpyDeviceToHost, s));
    FORGE_CUDA_CHECK(cudaStreamSynchronize(s));
  } catch (...) {
    release(first, device);
    throw;
  }
  release(first, device);
  if (found != none) return int64_t(found);
  const int threads = block_threads(V, kThreads);
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    cross_entropy_fwd_kernel<T><<<unsigned(N), threads, 0, s>>>(static_cast<const T*>(logits), target, V,
                                                                      ignore, loss, lse);
  });
  FORGE_CUDA_CHECK(cudaGetLastError());
  return -1;
}

void cross_entropy_bwd(DType dt, const void* logits, const int64_t* target, const float* lse, const float* scale,
                       int64_t N, int64_t V, int64_t ignore, void* dlogits, int device) {
  if (N == 0 || V == 0) return;
  cudaStream_t s = stream_for(device);
  const int threads = block_threads(V, kThreads);
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    cross_entropy_bwd_kernel<T><<<unsigned(N), threads, 0, s>>>(static_cast<const T*>(logits), target, lse,
                                                                      scale, V, ignore, static_cast<T*>(dlogits));
  });
  FORGE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace forge::cuda::gpu
