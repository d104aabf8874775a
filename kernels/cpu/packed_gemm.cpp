// Decode GEMM over packed weight panels (see packed_gemm.h).
#include "kernels/cpu/packed_gemm.h"

#include <algorithm>
#include <cmath>
#include <vector>
#ifdef __AVX512F__
#include <immintrin.h>
#endif

namespace forge::cpu {
namespace {
constexpr int kRowsMax = 8;  // rows of X in one register block: 8 x 3 accumulators of 16 lanes
constexpr int kVecs = int(kPanel / 16);

// Calls f.template operator()<R>() for R = rows in 1 .. 8, so register blocks have constant size.
template <class F>
void with_rows(int64_t R, F&& f) {
  switch (R) {
    case 1: return f.template operator()<1>();
    case 2: return f.template operator()<2>();
    case 3: return f.template operator()<3>();
    case 4: return f.template operator()<4>();
    case 5: return f.template operator()<5>();
    case 6: return f.template operator()<6>();
    case 7: return f.template operator()<7>();
    default: return f.template operator()<8>();
  }
}

#ifdef __AVX512F__
// One fetch of 3 cache lines into L2: a panel row of f32 (two of bf16).
inline void fetch_row(const void* row) {
  const char* c = static_cast<const char*>(row);
  for (int v = 0; v < kVecs; ++v) _mm_prefetch(c + 64 * v, _MM_HINT_T1);
}

// 16 weights of a panel row as f32: bf16 widens exactly (its bits are an f32's top half).
inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 load16(const bf16* p) {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// Rows [0, R) of X against one panel P: Y's `live` columns of it (kPanel but in the last panel).
// Fetches rows k = pass, pass + passes, ... of the next panel (see run_packed).
template <int R, typename T>
void panel_rows(int64_t K, const float* X, int64_t ldx, const T* P, float* Y, int64_t ldy, int64_t live,
                const T* next, int64_t pass, int64_t passes) {
  // The loops over m and v unroll (constant trips), so the accumulators stay in registers.
  __m512 acc[R][kVecs];
#pragma GCC unroll 8
  for (int m = 0; m < R; ++m)
#pragma GCC unroll 3
    for (int v = 0; v < kVecs; ++v) acc[m][v] = _mm512_setzero_ps();
  int64_t until_fetch = pass;
  for (int64_t k = 0; k < K; ++k) {
    if (next && until_fetch-- == 0) {
      until_fetch = passes - 1;
      fetch_row(next + k * kPanel);
    }
    __m512 b[kVecs];
#pragma GCC unroll 3
    for (int v = 0; v < kVecs; ++v) b[v] = load16(P + k * kPanel + 16 * v);
#pragma GCC unroll 8
    for (int m = 0; m < R; ++m) {
      const __m512 a = _mm512_set1_ps(X[m * ldx + k]);
#pragma GCC unroll 3
      for (int v = 0; v < kVecs; ++v) acc[m][v] = _mm512_fmadd_ps(a, b[v], acc[m][v]);
    }
  }
  for (int v = 0; v < kVecs; ++v) {
    const int64_t cols = std::clamp<int64_t>(live - 16 * v, 0, 16);
    const __mmask16 mask = __mmask16((1u << cols) - 1u);
    for (int m = 0; m < R; ++m) _mm512_mask_storeu_ps(Y + m * ldy + 16 * v, mask, acc[m][v]);
  }
}
#else
// Without AVX-512: the same chain of fused multiply-adds per output, so the same bits.
template <int R, typename T>
void panel_rows(int64_t K, const float* X, int64_t ldx, const T* P, float* Y, int64_t ldy, int64_t live, const T*,
                int64_t, int64_t) {
  for (int64_t m = 0; m < R; ++m)
    for (int64_t c = 0; c < live; ++c) {
      float acc = 0.0f;
      for (int64_t k = 0; k < K; ++k) acc = std::fma(X[m * ldx + k], to_f32(P[k * kPanel + c]), acc);
      Y[m * ldy + c] = acc;
    }
}
#endif

// Panels over the threads, each computed in passes of up to 8 rows of X (f32). `next` is the
// following panel, which the passes fetch into L2 while this one computes: panels sit in order in
// memory, but the hardware prefetcher stops at every page (into L1 it would evict this panel).
// Pass j fetches the next panel's rows k = j, j + passes, ..., so the fetch spreads over all
// passes instead of bursting in the first (5-10% faster at 32 rows with weights from memory).
template <typename T>
void run_packed(int64_t M, int64_t N, int64_t K, const float* X, int64_t ldx, const T* P, float* Y, int64_t ldy) {
  const int64_t panels = (N + kPanel - 1) / kPanel, passes = (M + kRowsMax - 1) / kRowsMax;
#pragma omp parallel for schedule(static) if (panels > 1)
  for (int64_t p = 0; p < panels; ++p) {
    const T* panel = P + p * K * kPanel;
    const T* next = p + 1 < panels ? panel + K * kPanel : nullptr;
    const int64_t live = std::min(kPanel, N - p * kPanel);
    for (int64_t m0 = 0; m0 < M; m0 += kRowsMax)
      with_rows(std::min<int64_t>(kRowsMax, M - m0), [&]<int R>() {
        panel_rows<R>(K, X + m0 * ldx, ldx, panel, Y + m0 * ldy + p * kPanel, ldy, live, next, m0 / kRowsMax, passes);
      });
  }
}

template <typename T>
void pack(const T* W, int64_t ldw, int64_t N, int64_t K, T* P) {
  const int64_t panels = (N + kPanel - 1) / kPanel;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < panels; ++p)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t c = 0; c < kPanel; ++c) {
        const int64_t n = p * kPanel + c;
        P[(p * K + k) * kPanel + c] = n < N ? W[n * ldw + k] : T{0};
      }
}
}  // namespace

int64_t packed_elems(int64_t N, int64_t K) { return (N + kPanel - 1) / kPanel * K * kPanel; }

bool packed_bf16_fast() {
#ifdef __AVX512F__
  return true;
#else
  return false;
#endif
}

void pack_panels(const float* W, int64_t ldw, int64_t N, int64_t K, float* P) { pack(W, ldw, N, K, P); }
void pack_panels(const bf16* W, int64_t ldw, int64_t N, int64_t K, bf16* P) { pack(W, ldw, N, K, P); }

void packed_gemm(int64_t M, int64_t N, int64_t K, const float* X, int64_t ldx, const float* P, float* Y,
                 int64_t ldy) {
  run_packed(M, N, K, X, ldx, P, Y, ldy);
}

void packed_gemm(int64_t M, int64_t N, int64_t K, const bf16* X, int64_t ldx, const bf16* P, float* Y,
                 int64_t ldy) {
  std::vector<float> xf(static_cast<size_t>(M * K));  // X widened once, broadcast from f32
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < K; ++k) xf[size_t(m * K + k)] = to_f32(X[m * ldx + k]);
  run_packed(M, N, K, xf.data(), K, P, Y, ldy);
}

}  // namespace forge::cpu
