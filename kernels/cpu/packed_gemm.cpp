// Decode GEMM over packed weight panels (see packed_gemm.h).
#include "kernels/cpu/packed_gemm.h"

#include <algorithm>
#include <cmath>
#ifdef __AVX512F__
#include <immintrin.h>
#endif

namespace forge::cpu {
namespace {
constexpr int kRowsMax = 8;  // rows of X in one register block: 8 x 3 accumulators of 16 lanes

#ifdef __AVX512F__
constexpr int kVecs = int(kPanel / 16);

// Rows [0, R) of X against one panel: Y's `live` columns of the panel (kPanel but in the last).
// `next` is the following panel, fetched into L2 while this one computes: panels sit in order in
// memory, but the hardware prefetcher stops at every page (into L1 it would evict this panel).
// A panel is computed in `blocks` passes of up to 8 rows; pass `pass` fetches the next panel's rows
// k = pass, pass + blocks, ..., so the fetch spreads over all passes instead of bursting in the
// first (5-10% faster at 32 rows with the weights coming from memory).
template <int R>
void panel_rows(int64_t K, const float* X, int64_t ldx, const float* P, float* Y, int64_t ldy, int64_t live,
                const float* next, int64_t pass, int64_t blocks) {
  // The loops over m and v unroll (constant trips), so the accumulators stay in registers.
  __m512 acc[R][kVecs];
#pragma GCC unroll 8
  for (int m = 0; m < R; ++m)
#pragma GCC unroll 3
    for (int v = 0; v < kVecs; ++v) acc[m][v] = _mm512_setzero_ps();
  int64_t until_fetch = pass;
  for (int64_t k = 0; k < K; ++k) {
    if (next && until_fetch-- == 0) {
      until_fetch = blocks - 1;
#pragma GCC unroll 3
      for (int v = 0; v < kVecs; ++v) _mm_prefetch(reinterpret_cast<const char*>(next + k * kPanel + 16 * v), _MM_HINT_T1);
    }
    __m512 b[kVecs];
#pragma GCC unroll 3
    for (int v = 0; v < kVecs; ++v) b[v] = _mm512_loadu_ps(P + k * kPanel + 16 * v);
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

void rows_block(int64_t R, int64_t K, const float* X, int64_t ldx, const float* P, float* Y, int64_t ldy,
                int64_t live, const float* next, int64_t pass, int64_t blocks) {
  switch (R) {
    case 1: return panel_rows<1>(K, X, ldx, P, Y, ldy, live, next, pass, blocks);
    case 2: return panel_rows<2>(K, X, ldx, P, Y, ldy, live, next, pass, blocks);
    case 3: return panel_rows<3>(K, X, ldx, P, Y, ldy, live, next, pass, blocks);
    case 4: return panel_rows<4>(K, X, ldx, P, Y, ldy, live, next, pass, blocks);
    case 5: return panel_rows<5>(K, X, ldx, P, Y, ldy, live, next, pass, blocks);
    case 6: return panel_rows<6>(K, X, ldx, P, Y, ldy, live, next, pass, blocks);
    case 7: return panel_rows<7>(K, X, ldx, P, Y, ldy, live, next, pass, blocks);
    default: return panel_rows<8>(K, X, ldx, P, Y, ldy, live, next, pass, blocks);
  }
}
#else
// Without AVX-512: the same chain of fused multiply-adds per output, so the same bits.
void rows_block(int64_t R, int64_t K, const float* X, int64_t ldx, const float* P, float* Y, int64_t ldy,
                int64_t live, const float*, int64_t, int64_t) {
  for (int64_t m = 0; m < R; ++m)
    for (int64_t c = 0; c < live; ++c) {
      float acc = 0.0f;
      for (int64_t k = 0; k < K; ++k) acc = std::fma(X[m * ldx + k], P[k * kPanel + c], acc);
      Y[m * ldy + c] = acc;
    }
}
#endif
}  // namespace

int64_t packed_floats(int64_t N, int64_t K) { return (N + kPanel - 1) / kPanel * K * kPanel; }

void pack_panels(const float* W, int64_t ldw, int64_t N, int64_t K, float* P) {
  const int64_t panels = (N + kPanel - 1) / kPanel;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < panels; ++p)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t c = 0; c < kPanel; ++c) {
        const int64_t n = p * kPanel + c;
        P[(p * K + k) * kPanel + c] = n < N ? W[n * ldw + k] : 0.0f;
      }
}

void packed_gemm(int64_t M, int64_t N, int64_t K, const float* X, int64_t ldx, const float* P, float* Y,
                 int64_t ldy) {
  const int64_t panels = (N + kPanel - 1) / kPanel;
#pragma omp parallel for schedule(static) if (panels > 1)
  for (int64_t p = 0; p < panels; ++p) {
    const float* panel = P + p * K * kPanel;
    const float* next = p + 1 < panels ? panel + K * kPanel : nullptr;
    const int64_t live = std::min(kPanel, N - p * kPanel);
    const int64_t blocks = (M + kRowsMax - 1) / kRowsMax;
    for (int64_t m0 = 0; m0 < M; m0 += kRowsMax)
      rows_block(std::min<int64_t>(kRowsMax, M - m0), K, X + m0 * ldx, ldx, panel, Y + m0 * ldy + p * kPanel, ldy,
                 live, next, m0 / kRowsMax, blocks);
  }
}

}  // namespace forge::cpu
