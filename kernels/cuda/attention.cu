// Training attention on the GPU, flash style: tiles of keys (forward, dQ) or queries (dK/dV) in
// shared memory, an online softmax, no score matrix in memory. Same contract as
// kernels/cpu/attention.h (causal with S >= T, grouped-query heads, document ids), f32 throughout.
//
// A row (a query row, or a key row for dK/dV) belongs to SPLIT neighbouring lanes of a warp, each
// holding the elements d = lane_part + SPLIT * e of its vectors in registers; dot products are
// summed across those lanes with shuffles. Interleaving the parts keeps a warp's reads of a shared
// tile row on distinct banks (the same address for lanes of the same part is a broadcast).
// Backward is FlashAttention-2's: D_i = dO_i . O_i first, then one kernel for dQ (per query row,
// over key tiles) and one for dK and dV (per key row, over the query tiles of every query head
// that shares the kv head), so nothing is accumulated with atomics. This is the correctness-first
// version (f32 FMA on CUDA cores); tensor-core tiles come once it has run on a GPU.
#include <cuda_runtime.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels/cpu/attention.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/attention_dims.h"
#include "kernels/cuda/gpu.h"

namespace forge::cuda::gpu {
namespace {
using cpu::AttnShape;
using cpu::AttnStrides;

constexpr int kRows = 64;   // rows (queries or keys) a block owns
constexpr int kChunk = 16;  // keys scored before one online-softmax rescale

template <int D>
struct Cfg {
  static constexpr int SPLIT = D <= 32 ? 1 : D <= 64 ? 2 : 4;  // lanes per row
  static constexpr int E = D / SPLIT;                          // elements per lane
  static constexpr int TILE = D <= 64 ? 64 : 32;               // rows of a shared tile
  static constexpr int THREADS = kRows * SPLIT;
  static_assert(D % SPLIT == 0 && E <= 32, "head dim");
};

__host__ __device__ __forceinline__ int64_t lmin(int64_t a, int64_t b) { return a < b ? a : b; }
__host__ __device__ __forceinline__ int64_t lmax(int64_t a, int64_t b) { return a > b ? a : b; }

// Sum over the SPLIT lanes of a row; every lane of the warp must call it.
template <int SPLIT>
__device__ __forceinline__ float row_sum(float v) {
#pragma unroll
  for (int o = SPLIT / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// x . row for a row of SPLIT-interleaved lanes: this lane's elements x[e] pair with
// row[part + SPLIT * e] (a shared tile row); the lanes' parts are summed. Every lane must call it.
template <int D>
__device__ __forceinline__ float row_dot(const float (&x)[Cfg<D>::E], const float* row, int part) {
  float acc = 0.0f;
#pragma unroll
  for (int e = 0; e < Cfg<D>::E; ++e) acc += x[e] * row[part + Cfg<D>::SPLIT * e];
  return row_sum<Cfg<D>::SPLIT>(acc);
}

// Loads rows [r0, r0 + n) of a [L, D] operand (element strides st; batch/head offset applied) into
// a [TILE][D] shared tile.
template <int D, int TILE>
__device__ void load_tile(float (*tile)[D], const float* src, int64_t row_stride, int64_t r0, int n) {
  for (int x = threadIdx.x; x < n * D; x += blockDim.x) tile[x / D][x % D] = src[(r0 + x / D) * row_stride + x % D];
}

// The query row a thread of a kernel over query rows works on (SPLIT lanes share a row): batch
// element b, head h and its kv head hk from blockIdx.y, row i from blockIdx.x and the thread,
// this lane's part of the row, and whether the row exists (i < T).
struct QueryRow {
  int64_t b, h, hk, i;
  int part;
  bool active;
};
template <int D>
__device__ __forceinline__ QueryRow query_row(const AttnShape& s) {
  QueryRow r;
  r.b = blockIdx.y / s.Hq;
  r.h = blockIdx.y % s.Hq;
  r.hk = r.h / (s.Hq / s.Hkv);
  r.part = threadIdx.x % Cfg<D>::SPLIT;
  r.i = int64_t(blockIdx.x) * kRows + threadIdx.x / Cfg<D>::SPLIT;
  r.active = r.i < s.T;
  return r;
}

// Key j visible to query i (same batch element): causal, inside the sliding window, same document.
__device__ __forceinline__ bool visible(const AttnShape& s, int64_t b, int64_t i, int64_t j) {
  const int64_t p = i + (s.S - s.T);
  if (s.causal && (j > p || (s.window > 0 && j <= p - s.window))) return false;
  return !s.doc || s.doc[b * s.T + j] == s.doc[b * s.T + i];
}
// A scaled score through Gemma 2's soft-cap (if any); grad gets d(capped)/d(score).
__device__ __forceinline__ float capped(const AttnShape& s, float x, float* grad = nullptr) {
  if (s.softcap <= 0) {
    if (grad) *grad = 1.0f;
    return x;
  }
  const float t = tanhf(x / s.softcap);
  if (grad) *grad = 1.0f - t * t;
  return s.softcap * t;
}
// The first key a block of query rows from `first_row` can see: past the window, tiles are skipped.
__device__ __forceinline__ int64_t first_key(const AttnShape& s, int64_t first_row) {
  return s.causal && s.window > 0 ? lmax(0, first_row + (s.S - s.T) + 1 - s.window) : 0;
}

template <int D>
__global__ void __launch_bounds__(Cfg<D>::THREADS)
    fwd_kernel(AttnShape s, const float* q, AttnStrides qs, const float* k, AttnStrides ks, const float* v,
               AttnStrides vs, float* o, float* lse) {
  using C = Cfg<D>;
  __shared__ float Kt[C::TILE][D], Vt[C::TILE][D];
  const auto [b, h, hk, i, part, active] = query_row<D>(s);
  float qr[C::E], acc[C::E];
  const float* qrow = q + b * qs.b + h * qs.h + (active ? i : 0) * qs.l;
#pragma unroll
  for (int e = 0; e < C::E; ++e) qr[e] = active ? qrow[part + C::SPLIT * e] * s.scale : 0.0f, acc[e] = 0.0f;
  float m = -INFINITY, l = 0.0f;
  const int64_t last = lmin(s.T, int64_t(blockIdx.x + 1) * kRows) - 1;  // the block's last query row
  const int64_t kend = s.causal ? lmin(s.S, last + (s.S - s.T) + 1) : s.S;
  const float* kbase = k + b * ks.b + hk * ks.h;
  const float* vbase = v + b * vs.b + hk * vs.h;
  for (int64_t j0 = first_key(s, int64_t(blockIdx.x) * kRows); j0 < kend; j0 += C::TILE) {
    const int n = int(lmin(C::TILE, kend - j0));
    __syncthreads();  // the previous tile is no longer read
    load_tile<D, C::TILE>(Kt, kbase, ks.l, j0, n);
    load_tile<D, C::TILE>(Vt, vbase, vs.l, j0, n);
    __syncthreads();
    for (int r0 = 0; r0 < n; r0 += kChunk) {
      float sc[kChunk];
      float cmax = -INFINITY;
#pragma unroll
      for (int u = 0; u < kChunk; ++u) {
        const int r = r0 + u;  // r < n is the same for the whole block: the shuffles stay uniform
        const float d = r < n ? row_dot<D>(qr, Kt[r], part) : 0.0f;
        sc[u] = (r < n && active && visible(s, b, i, j0 + r)) ? capped(s, d) : -INFINITY;
        cmax = fmaxf(cmax, sc[u]);
      }
      if (cmax == -INFINITY) continue;  // nothing visible in this chunk for this row
      const float mn = fmaxf(m, cmax), corr = expf(m - mn);
      l *= corr;
#pragma unroll
      for (int e = 0; e < C::E; ++e) acc[e] *= corr;
#pragma unroll
      for (int u = 0; u < kChunk; ++u) {
        if (r0 + u >= n) break;
        const float p = expf(sc[u] - mn);  // 0 for hidden keys
        l += p;
#pragma unroll
        for (int e = 0; e < C::E; ++e) acc[e] += p * Vt[r0 + u][part + C::SPLIT * e];
      }
      m = mn;
    }
  }
  if (!active) return;
  const int64_t row = (b * s.Hq + h) * s.T + i;
#pragma unroll
  for (int e = 0; e < C::E; ++e) o[row * D + part + C::SPLIT * e] = acc[e] / l;
  if (part == 0) lse[row] = m + logf(l);
}

// delta[row] = dO[row] . O[row] over [rows, D] contiguous.
__global__ void delta_kernel(const float* o, const float* dout, int64_t rows, int64_t D, float* delta) {
  const int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (row >= rows) return;  // whole warps leave together
  float acc = 0.0f;
  for (int64_t d = threadIdx.x % 32; d < D; d += 32) acc += o[row * D + d] * dout[row * D + d];
  acc = warp_sum(acc);
  if (threadIdx.x % 32 == 0) delta[row] = acc;
}

template <int D>
__global__ void __launch_bounds__(Cfg<D>::THREADS)
    dq_kernel(AttnShape s, const float* q, AttnStrides qs, const float* k, AttnStrides ks, const float* v,
              AttnStrides vs, const float* dout, const float* lse, const float* delta, float* dq) {
  using C = Cfg<D>;
  __shared__ float Kt[C::TILE][D], Vt[C::TILE][D];
  const auto [b, h, hk, i, part, active] = query_row<D>(s);
  const int64_t row = (b * s.Hq + h) * s.T + (active ? i : 0);
  float qr[C::E], dor[C::E], acc[C::E];
  const float* qrow = q + b * qs.b + h * qs.h + (active ? i : 0) * qs.l;
#pragma unroll
  for (int e = 0; e < C::E; ++e) {
    qr[e] = qrow[part + C::SPLIT * e] * s.scale;
    dor[e] = dout[row * D + part + C::SPLIT * e];
    acc[e] = 0.0f;
  }
  const float my_lse = lse[row], my_delta = delta[row];
  const int64_t last = lmin(s.T, int64_t(blockIdx.x + 1) * kRows) - 1;
  const int64_t kend = s.causal ? lmin(s.S, last + (s.S - s.T) + 1) : s.S;
  const float* kbase = k + b * ks.b + hk * ks.h;
  const float* vbase = v + b * vs.b + hk * vs.h;
  for (int64_t j0 = first_key(s, int64_t(blockIdx.x) * kRows); j0 < kend; j0 += C::TILE) {
    const int n = int(lmin(C::TILE, kend - j0));
    __syncthreads();
    load_tile<D, C::TILE>(Kt, kbase, ks.l, j0, n);
    load_tile<D, C::TILE>(Vt, vbase, vs.l, j0, n);
    __syncthreads();
    for (int r = 0; r < n; ++r) {
      const float sd = row_dot<D>(qr, Kt[r], part), dp = row_dot<D>(dor, Vt[r], part);
      if (!active || !visible(s, b, i, j0 + r)) continue;
      float dc;
      const float ds = expf(capped(s, sd, &dc) - my_lse) * (dp - my_delta) * dc;
#pragma unroll
      for (int e = 0; e < C::E; ++e) acc[e] += ds * Kt[r][part + C::SPLIT * e];
    }
  }
  if (!active) return;
#pragma unroll
  for (int e = 0; e < C::E; ++e) dq[row * D + part + C::SPLIT * e] = acc[e] * s.scale;
}

template <int D>
__global__ void __launch_bounds__(Cfg<D>::THREADS)
    dkv_kernel(AttnShape s, const float* q, AttnStrides qs, const float* k, AttnStrides ks, const float* v,
               AttnStrides vs, const float* dout, const float* lse, const float* delta, float* dk, float* dv) {
  using C = Cfg<D>;
  __shared__ float Qt[C::TILE][D], Ot[C::TILE][D];  // a tile of queries and of their output gradients
  __shared__ float Lt[C::TILE], Dt[C::TILE];
  const int64_t b = blockIdx.y / s.Hkv, hk = blockIdx.y % s.Hkv, group = s.Hq / s.Hkv;
  const int part = threadIdx.x % C::SPLIT;
  const int64_t j = int64_t(blockIdx.x) * kRows + threadIdx.x / C::SPLIT;
  const bool active = j < s.S;
  float kr[C::E], vr[C::E], gk[C::E], gv[C::E];
  const float* krow = k + b * ks.b + hk * ks.h + (active ? j : 0) * ks.l;
  const float* vrow = v + b * vs.b + hk * vs.h + (active ? j : 0) * vs.l;
#pragma unroll
  for (int e = 0; e < C::E; ++e) {
    kr[e] = krow[part + C::SPLIT * e] * s.scale;
    vr[e] = vrow[part + C::SPLIT * e];
    gk[e] = gv[e] = 0.0f;
  }
  // Queries that can see the block's keys: i >= j - (S - T) when causal, and with a window
  // i < j - (S - T) + window for the block's last key.
  const int64_t i_begin = s.causal ? lmax(0, int64_t(blockIdx.x) * kRows - (s.S - s.T)) : 0;
  const int64_t i_end =
      s.causal && s.window > 0 ? lmin(s.T, int64_t(blockIdx.x + 1) * kRows - 1 - (s.S - s.T) + s.window) : s.T;
  for (int64_t g = 0; g < group; ++g) {
    const int64_t h = hk * group + g, rows0 = (b * s.Hq + h) * s.T;
    for (int64_t i0 = i_begin; i0 < i_end; i0 += C::TILE) {
      const int n = int(lmin(C::TILE, i_end - i0));
      __syncthreads();
      load_tile<D, C::TILE>(Qt, q + b * qs.b + h * qs.h, qs.l, i0, n);
      load_tile<D, C::TILE>(Ot, dout + rows0 * D, D, i0, n);
      for (int x = threadIdx.x; x < n; x += blockDim.x) Lt[x] = lse[rows0 + i0 + x], Dt[x] = delta[rows0 + i0 + x];
      __syncthreads();
      for (int r = 0; r < n; ++r) {
        const float sd = row_dot<D>(kr, Qt[r], part), dp = row_dot<D>(vr, Ot[r], part);
        if (!active || !visible(s, b, i0 + r, j)) continue;
        float dc;
        const float p = expf(capped(s, sd, &dc) - Lt[r]), ds = p * (dp - Dt[r]) * dc;
#pragma unroll
        for (int e = 0; e < C::E; ++e) {
          gv[e] += p * Ot[r][part + C::SPLIT * e];
          gk[e] += ds * Qt[r][part + C::SPLIT * e];
        }
      }
    }
  }
  if (!active) return;
  const int64_t row = (b * s.Hkv + hk) * s.S + j;
#pragma unroll
  for (int e = 0; e < C::E; ++e) {
    dk[row * D + part + C::SPLIT * e] = gk[e] * s.scale;
    dv[row * D + part + C::SPLIT * e] = gv[e];
  }
}

// The head dims with a kernel.

[[noreturn]] void unsupported(int64_t D) {
  throw std::runtime_error("CUDA attention: head dim " + std::to_string(D) +
                           " has no kernel (16, 32, 48, 64, 80, 96, 128)");
}
}  // namespace

void attention_fwd(const AttnShape& s, const float* q, AttnStrides qs, const float* k, AttnStrides ks, const float* v,
                   AttnStrides vs, float* o, float* lse, int device) {
  cudaStream_t st = stream_for(device);
  const dim3 grid(unsigned((s.T + kRows - 1) / kRows), unsigned(s.B * s.Hq));
  switch (s.D) {
#define FORGE_CASE(d) \
  case d: fwd_kernel<d><<<grid, Cfg<d>::THREADS, 0, st>>>(s, q, qs, k, ks, v, vs, o, lse); break;
    FORGE_ATTN_HEAD_DIMS(FORGE_CASE)
#undef FORGE_CASE
    default: unsupported(s.D);
  }
  FORGE_CUDA_CHECK(cudaGetLastError());
}

void attention_bwd(const AttnShape& s, const float* q, AttnStrides qs, const float* k, AttnStrides ks, const float* v,
                   AttnStrides vs, const float* o, const float* dout, const float* lse, float* dq, float* dk,
                   float* dv, int device) {
  if (!attention_head_dim_supported(s.D)) unsupported(s.D);
  cudaStream_t st = stream_for(device);
  const int64_t rows = s.B * s.Hq * s.T;
  float* delta = static_cast<float*>(alloc(size_t(rows) * sizeof(float), device));
  delta_kernel<<<unsigned((rows + 7) / 8), 256, 0, st>>>(o, dout, rows, s.D, delta);
  const dim3 qgrid(unsigned((s.T + kRows - 1) / kRows), unsigned(s.B * s.Hq));
  const dim3 kgrid(unsigned((s.S + kRows - 1) / kRows), unsigned(s.B * s.Hkv));
  switch (s.D) {
#define FORGE_CASE(d)                                                                                      \
  case d:                                                                                                  \
    dq_kernel<d><<<qgrid, Cfg<d>::THREADS, 0, st>>>(s, q, qs, k, ks, v, vs, dout, lse, delta, dq);         \
    dkv_kernel<d><<<kgrid, Cfg<d>::THREADS, 0, st>>>(s, q, qs, k, ks, v, vs, dout, lse, delta, dk, dv);    \
    break;
    FORGE_ATTN_HEAD_DIMS(FORGE_CASE)
#undef FORGE_CASE
  }
  const cudaError_t launched = cudaGetLastError();
  release(delta, device);  // stream-ordered: freed after the kernels that read it
  FORGE_CUDA_CHECK(launched);
}

}  // namespace forge::cuda::gpu
