// CPU GEMM, row-major: C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C.
// op(X) = X^T when the trans flag is set (X then stored as [K,M] / [N,K] with its own ld).
// The backend is chosen once (fastest measured, see docs/architecture.md) or by FORGE_GEMM.
#pragma once
#include <cstdint>
#include <string>

#include "kernels/types.h"

namespace forge::cpu {

enum class GemmBackend { OpenBLAS, OneDNN, Eigen };

GemmBackend gemm_backend();
void set_gemm_backend(GemmBackend b);
GemmBackend gemm_backend_from_name(const std::string& name);  // "openblas", "onednn", "eigen"
const char* gemm_backend_name(GemmBackend b);

void gemm_f32(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
              const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
              int64_t ldc);

// bf16 inputs, f32 accumulation and f32 output (AVX512-BF16 through oneDNN).
void gemm_bf16(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const bf16* A, int64_t lda, const bf16* B, int64_t ldb, float beta, float* C,
               int64_t ldc);

}  // namespace forge::cpu
