// Paged attention on the GPU (decode and chunked prefill over block tables, block size any).
// Cache layout as on the CPU: keys [num_blocks, Hkv, D, bs] (transposed per block and head), values
// [num_blocks, Hkv, bs, D].
// One thread block per (query row, query head); each warp walks a strided share of the visible
// keys with an online softmax, lanes splitting the head dim; warps merge their partial states in
// shared memory at the end. Only slots in a row's window, below its sequence's length, are read.
#include <cuda_runtime.h>

#include <cmath>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/gpu.h"
#include "kernels/types.h"

namespace forge::cuda::gpu {
namespace {
constexpr int kWarps = 4;
constexpr int kMaxPerLane = 8;  // head_dim <= 256

template <typename T>
__device__ float ld(const T* p, int64_t i);
template <>
__device__ float ld<float>(const float* p, int64_t i) { return p[i]; }
template <>
__device__ float ld<bf16>(const bf16* p, int64_t i) { return to_f32(p[i]); }

template <typename T>
__global__ void paged_attention_kernel(const float* q,        // [N, Hq, D]
                                       const T* k_cache,      // [num_blocks, Hkv, D, bs]
                                       const T* v_cache,      // [num_blocks, Hkv, bs, D]
                                       const int32_t* block_tables,  // [S, max_blocks]
                                       const int32_t* query_start,   // [S + 1]
                                       const int32_t* context_lens,  // [S]
                                       const int32_t* row_seq,       // [N]: the sequence of each row
                                       float* out,                   // [N, Hq, D]
                                       int Hq, int Hkv, int D, int bs, int max_blocks, float scale,
                                       int window, float softcap) {
  const int row = blockIdx.x, h = blockIdx.y, hk = h / (Hq / Hkv);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int s = row_seq[row];
  const int n = query_start[s + 1] - query_start[s];
  const int pos = context_lens[s] - n + (row - query_start[s]);
  const int32_t* table = block_tables + int64_t(s) * max_blocks;
  const int per = (D + 31) / 32;
  float qv[kMaxPerLane], acc[kMaxPerLane];
  for (int i = 0; i < per; ++i) {
    const int d = lane + 32 * i;
    qv[i] = d < D ? q[(int64_t(row) * Hq + h) * D + d] * scale : 0.0f;
    acc[i] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  const int first = window > 0 && pos + 1 > window ? pos + 1 - window : 0;  // the sliding window's start
  for (int j = first + warp; j <= pos; j += kWarps) {
    const int64_t tile = (int64_t(table[j / bs]) * Hkv + hk) * D * bs;  // this head's tiles in the block
    const int64_t kbase = tile + j % bs, base = tile + int64_t(j % bs) * D;
    float dot = 0.0f;
    for (int i = 0; i < per; ++i) {
      const int d = lane + 32 * i;
      if (d < D) dot += qv[i] * ld(k_cache, kbase + int64_t(d) * bs);
    }
    for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
    if (softcap > 0) dot = softcap * tanhf(dot / softcap);  // Gemma 2
    const float m_new = fmaxf(m, dot);
    const float corr = __expf(m - m_new), p = __expf(dot - m_new);
    l = l * corr + p;
    for (int i = 0; i < per; ++i) {
      const int d = lane + 32 * i;
      acc[i] = acc[i] * corr + (d < D ? p * ld(v_cache, base + d) : 0.0f);
    }
    m = m_new;
  }
  __shared__ float sm[kWarps], sl[kWarps];
  __shared__ float sacc[kWarps][kMaxPerLane * 32];
  if (lane == 0) {
    sm[warp] = m;
    sl[warp] = l;
  }
  for (int i = 0; i < per; ++i) sacc[warp][lane + 32 * i] = acc[i];
  __syncthreads();
  if (warp != 0) return;
  float M = -INFINITY;
  for (int w = 0; w < kWarps; ++w) M = fmaxf(M, sm[w]);
  float L = 0.0f;
  for (int w = 0; w < kWarps; ++w)
    if (sm[w] != -INFINITY) L += sl[w] * __expf(sm[w] - M);
  for (int i = 0; i < per; ++i) {
    const int d = lane + 32 * i;
    if (d >= D) continue;
    float o = 0.0f;
    for (int w = 0; w < kWarps; ++w)
      if (sm[w] != -INFINITY) o += sacc[w][d] * __expf(sm[w] - M);
    out[(int64_t(row) * Hq + h) * D + d] = o / L;
  }
}

template <typename T>
__global__ void kv_write_kernel(int64_t N, int64_t Hkv, int64_t row, int64_t bs, const float* k, const float* v,
                                const int64_t* slots, T* k_cache, T* v_cache) {
  const int64_t i = blockIdx.x, block = slots[i] / bs, in_block = slots[i] % bs, D = row / Hkv;
  for (int64_t e = threadIdx.x; e < row; e += blockDim.x) {  // e = h * D + d
    const int64_t tile = (block * row + e - e % D) * bs;       // head h's tiles in the block
    store_f32(k_cache + tile + (e % D) * bs + in_block, k[i * row + e]);
    store_f32(v_cache + tile + in_block * D + e % D, v[i * row + e]);
  }
}
}  // namespace

void paged_attention(DType dt, int64_t N, const cpu::PagedAttnShape& s, const float* q, const void* k_cache,
                     const void* v_cache, const int32_t* block_tables, const int32_t* query_start,
                     const int32_t* context_lens, const int32_t* row_seq, float* out, int device) {
  if (s.D > 32 * kMaxPerLane) throw std::runtime_error("paged attention (CUDA): head_dim above 256");
  if (N == 0) return;
  cudaStream_t st = stream_for(device);
  const dim3 grid{unsigned(N), unsigned(s.Hq), 1u};
  if (dt == DType::F32)
    paged_attention_kernel<float><<<grid, 32 * kWarps, 0, st>>>(
        q, static_cast<const float*>(k_cache), static_cast<const float*>(v_cache), block_tables, query_start,
        context_lens, row_seq, out, int(s.Hq), int(s.Hkv), int(s.D), int(s.block_size), int(s.max_blocks), s.scale,
        int(s.window), s.softcap);
  else if (dt == DType::BF16)
    paged_attention_kernel<bf16><<<grid, 32 * kWarps, 0, st>>>(
        q, static_cast<const bf16*>(k_cache), static_cast<const bf16*>(v_cache), block_tables, query_start,
        context_lens, row_seq, out, int(s.Hq), int(s.Hkv), int(s.D), int(s.block_size), int(s.max_blocks), s.scale,
        int(s.window), s.softcap);
  else
    throw std::runtime_error("paged attention (CUDA): cache must be f32 or bf16");
  FORGE_CUDA_CHECK(cudaGetLastError());
}

void paged_kv_write(DType dt, int64_t N, int64_t Hkv, int64_t D, int64_t block_size, const float* k, const float* v,
                    const int64_t* slots, void* k_cache, void* v_cache, int device) {
  if (N == 0) return;
  cudaStream_t st = stream_for(device);
  if (dt == DType::F32)
    kv_write_kernel<float><<<unsigned(N), 128, 0, st>>>(N, Hkv, Hkv * D, block_size, k, v, slots,
                                                         static_cast<float*>(k_cache), static_cast<float*>(v_cache));
  else
    kv_write_kernel<bf16><<<unsigned(N), 128, 0, st>>>(N, Hkv, Hkv * D, block_size, k, v, slots,
                                                        static_cast<bf16*>(k_cache), static_cast<bf16*>(v_cache));
  FORGE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace forge::cuda::gpu
