// Decode GEMM: Y[M, N] = X[M, K] W^T for few rows (a decode step's tokens), W [N, K] packed once
// into panels of kPanel output features, so a panel streams through the cache in order while its
// columns sit in vector registers and the rows of X are broadcast. Every output is one chain of
// multiply-adds over k in order: a row's result is the same bits whatever M, the other rows or
// the thread count (batch-invariant decoding).
//
// P[p][k][c] = W[p * kPanel + c][k] (zeros past N), in the weight's dtype: f32, or bf16, which
// the kernel widens to f32 as it loads (exact), so bf16 weights cost half the bytes and give the
// same sums as their f32 values would.
#pragma once
#include <cstdint>

#include "kernels/types.h"

namespace forge::cpu {

constexpr int64_t kPanel = 48;

// Elements of W [N, K] packed: panels x K x kPanel.
int64_t packed_elems(int64_t N, int64_t K);
void pack_panels(const float* W, int64_t ldw, int64_t N, int64_t K, float* P);
void pack_panels(const bf16* W, int64_t ldw, int64_t N, int64_t K, bf16* P);

// Y[m, n] (ldy, f32) = sum_k X[m, k] (ldx) W[n, k], from the packed panels P of W.
void packed_gemm(int64_t M, int64_t N, int64_t K, const float* X, int64_t ldx, const float* P, float* Y,
                 int64_t ldy);
void packed_gemm(int64_t M, int64_t N, int64_t K, const bf16* X, int64_t ldx, const bf16* P, float* Y,
                 int64_t ldy);

// Whether the kernels run in vector code here (built with AVX-512). Without it the scalar code
// gives the same sums; f32 weights are still packed (batch invariance), bf16 ones are not
// (oneDNN's bf16 matmul is faster than scalar code).
bool packed_bf16_fast();

}  // namespace forge::cpu
