// Decode GEMM: Y[M, N] = X[M, K] W^T for few rows (a decode step's tokens), W [N, K] packed once
// into panels of kPanel output features, P[p][k][c] = W[p * kPanel + c][k] (zeros past N), so a
// panel streams through the cache in order while its columns sit in vector registers and the rows
// of X are broadcast. Every output is one multiply-add chain over k in order: a row's result is
// the same bits whatever M, the other rows or the thread count (batch-invariant decoding).
#pragma once
#include <cstdint>

namespace forge::cpu {

constexpr int64_t kPanel = 48;

// Floats of W [N, K] packed: panels x K x kPanel.
int64_t packed_floats(int64_t N, int64_t K);
void pack_panels(const float* W, int64_t ldw, int64_t N, int64_t K, float* P);

// Y[m, n] (ldy) = sum_k X[m, k] (ldx) W[n, k], from the packed panels P of W.
void packed_gemm(int64_t M, int64_t N, int64_t K, const float* X, int64_t ldx, const float* P, float* Y,
                 int64_t ldy);

}  // namespace forge::cpu
