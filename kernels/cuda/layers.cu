// CUDA kernels for embedding, RMSNorm and rotary embedding: the contracts of kernels/cpu/layers.h
// on device pointers, f32 math on any float storage, results rounded as the CPU rounds them.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/gpu.h"

namespace forge::cuda::gpu {
namespace {
constexpr int kThreads = 256;

template <typename T>
__global__ void embedding_fwd_kernel(const T* w, int64_t s_row, int64_t s_col, const int64_t* ids, int64_t C,
                                     T* out) {
  const int64_t n = blockIdx.x, row = ids[n] * s_row;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) out[n * C + c] = w[row + c * s_col];
}

template <typename T>
__global__ void embedding_bwd_kernel(const T* g, const int64_t* ids, int64_t C, float* gw) {
  const int64_t n = blockIdx.x;
  float* dst = gw + ids[n] * C;  // repeated ids add up: atomics
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) atomicAdd(dst + c, load_f32(g + n * C + c));
}

// One block per row: the sum of squares, then y = round_T(x * rstd) * w as HF rounds it, or
// with unit_offset y = x * rstd * (1 + w) in f32 (Gemma).
template <typename T>
__global__ void rms_norm_fwd_kernel(const T* x, const T* w, int64_t C, float eps, bool unit_offset, T* y,
                                    float* rstd) {
  __shared__ float scratch[32];
  const T* xr = x + blockIdx.x * C;
  float ss = 0.0f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    const float v = load_f32(xr + c);
    ss += v * v;
  }
  ss = block_sum(ss, scratch);
  const float r = rsqrtf(ss / float(C) + eps);
  if (threadIdx.x == 0) rstd[blockIdx.x] = r;
  T* yr = y + blockIdx.x * C;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    if (unit_offset) {
      store_f32(yr + c, load_f32(xr + c) * r * (1.0f + load_f32(w + c)));
      continue;
    }
    T xh;
    store_f32(&xh, load_f32(xr + c) * r);
    store_f32(yr + c, load_f32(&xh) * load_f32(w + c));
  }
}

// dx per row; a block walks rows n = blockIdx.x, + gridDim.x, ... and sums its share of dw[c] in
// shared memory (dynamic, C floats), then adds it to dw (f32, zeroed first) with one atomic per c.
template <typename T>
__global__ void rms_norm_bwd_kernel(const T* x, const T* w, const float* rstd, const T* g, int64_t N, int64_t C,
                                    float off, T* dx, float* dw) {
  __shared__ float scratch[32];
  extern __shared__ float dw_part[];
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) dw_part[c] = 0.0f;
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const T *xr = x + n * C, *gr = g + n * C;
    const float r = rstd[n];
    float dot = 0.0f;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      const float xh = load_f32(xr + c) * r, gv = load_f32(gr + c);
      dot += gv * (off + load_f32(w + c)) * xh;
      dw_part[c] += gv * xh;  // column c is always this thread's: no race
    }
    dot = block_sum(dot, scratch) / float(C);
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      const float xh = load_f32(xr + c) * r;
      store_f32(dx + n * C + c, r * (load_f32(gr + c) * (off + load_f32(w + c)) - xh * dot));
    }
  }
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) atomicAdd(dw + c, dw_part[c]);
}

// One block per (b, t, h): pairs (i, i + R/2) rotated by pos * inv_freq[i]; dims R.. copied.
template <typename T>
__global__ void rope_kernel(const T* x, int64_t H, int64_t T_, int64_t D, int64_t R, int64_t sb, int64_t sh,
                            int64_t st, const int64_t* pos, int64_t pos_sb, const float* inv_freq, float sign,
                            float mscale, T* y) {
  const int64_t h = blockIdx.x % H, t = (blockIdx.x / H) % T_, b = blockIdx.x / (H * T_), half = R / 2;
  const float p = float(pos[b * pos_sb + t]);
  const T* xr = x + b * sb + h * sh + t * st;
  T* yr = y + ((b * H + h) * T_ + t) * D;
  for (int64_t i = threadIdx.x; i < half; i += blockDim.x) {
    float sn, cs;
    sincosf(p * inv_freq[i], &sn, &cs);
    sn *= sign * mscale;
    cs *= mscale;
    const float x1 = load_f32(xr + i), x2 = load_f32(xr + i + half);
    store_f32(yr + i, x1 * cs - x2 * sn);
    store_f32(yr + i + half, x2 * cs + x1 * sn);
  }
  for (int64_t i = R + threadIdx.x; i < D; i += blockDim.x) yr[i] = xr[i];  // partial rotary
}

}  // namespace

void embedding_fwd(DType dt, const void* weight, int64_t s_row, int64_t s_col, const int64_t* ids, int64_t N,
                   int64_t C, void* out, int device) {
  if (N == 0 || C == 0) return;
  cudaStream_t s = stream_for(device);
  const int threads = block_threads(C, kThreads);
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    embedding_fwd_kernel<T><<<unsigned(N), threads, 0, s>>>(static_cast<const T*>(weight), s_row, s_col, ids,
                                                                  C, static_cast<T*>(out));
  });
  FORGE_CUDA_CHECK(cudaGetLastError());
}

void embedding_bwd(DType dt, const void* g, const int64_t* ids, int64_t N, int64_t C, float* gw, int device) {
  if (N == 0 || C == 0) return;
  cudaStream_t s = stream_for(device);
  const int threads = block_threads(C, kThreads);
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    embedding_bwd_kernel<T><<<unsigned(N), threads, 0, s>>>(static_cast<const T*>(g), ids, C, gw);
  });
  FORGE_CUDA_CHECK(cudaGetLastError());
}

void rms_norm_fwd(DType dt, const void* x, const void* w, int64_t N, int64_t C, float eps, bool unit_offset, void* y,
                  float* rstd, int device) {
  if (N == 0) return;
  cudaStream_t s = stream_for(device);
  const int threads = block_threads(C, kThreads);
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    rms_norm_fwd_kernel<T><<<unsigned(N), threads, 0, s>>>(
        static_cast<const T*>(x), static_cast<const T*>(w), C, eps, unit_offset, static_cast<T*>(y), rstd);
  });
  FORGE_CUDA_CHECK(cudaGetLastError());
}

void rms_norm_bwd(DType dt, const void* x, const void* w, const float* rstd, const void* g, int64_t N, int64_t C,
                  bool unit_offset, void* dx, float* dw, int device) {
  cudaStream_t s = stream_for(device);
  FORGE_CUDA_CHECK(cudaMemsetAsync(dw, 0, size_t(C) * sizeof(float), s));
  if (N == 0) return;
  const size_t smem = size_t(C) * sizeof(float);
  if (smem > 48 * 1024) throw std::runtime_error("rms_norm backward (CUDA): hidden size above 12288");
  const unsigned blocks = unsigned(std::min<int64_t>(N, 4 * 132));  // a few waves of an H100's SMs
  const int threads = block_threads(C, kThreads);
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    rms_norm_bwd_kernel<T><<<blocks, threads, smem, s>>>(static_cast<const T*>(x), static_cast<const T*>(w),
                                                                rstd, static_cast<const T*>(g), N, C,
                                                                unit_offset ? 1.0f : 0.0f, static_cast<T*>(dx), dw);
  });
  FORGE_CUDA_CHECK(cudaGetLastError());
}

void rope(DType dt, const void* x, int64_t B, int64_t H, int64_t T, int64_t D, int64_t R, int64_t sb, int64_t sh,
          int64_t st,
          const int64_t* pos, int64_t pos_sb, const float* inv_freq, float sign, float mscale, void* y,
          int device) {
  if (B * H * T == 0) return;
  cudaStream_t s = stream_for(device);
  const int threads = block_threads(D / 2, kThreads);
  dispatch_float(dt, [&](auto tag) {
    using Ty = decltype(tag);
    rope_kernel<Ty><<<unsigned(B * H * T), threads, 0, s>>>(
        static_cast<const Ty*>(x), H, T, D, R, sb, sh, st, pos, pos_sb, inv_freq, sign, mscale,
        static_cast<Ty*>(y));
  });
  FORGE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace forge::cuda::gpu
