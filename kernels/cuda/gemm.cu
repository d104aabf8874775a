// Row-major strided-batched GEMM through cuBLASLt (fp32 accumulation), by computing the
// column-major product C^T = op(B)^T op(A)^T on the same memory.
#include <cublasLt.h>

#include <mutex>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/gpu.h"

#define FORGE_CUBLAS_CHECK(expr)                                                              \
  do {                                                                                        \
    cublasStatus_t st_ = (expr);                                                              \
    if (st_ != CUBLAS_STATUS_SUCCESS)                                                         \
      throw std::runtime_error(std::string("cuBLASLt error ") + std::to_string(int(st_)) + " at " #expr); \
  } while (0)

namespace forge::cuda::gpu {
namespace {
constexpr size_t kWorkspace = 32u << 20;

struct LtState {
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
};

LtState& lt_state(int device) {
  static std::mutex mu;
  static LtState states[16];
  std::lock_guard<std::mutex> lock(mu);
  LtState& s = states[device];
  if (!s.handle) {
    FORGE_CUDA_CHECK(cudaSetDevice(device));
    FORGE_CUBLAS_CHECK(cublasLtCreate(&s.handle));
    FORGE_CUDA_CHECK(cudaMalloc(&s.workspace, kWorkspace));
  }
  return s;
}

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::F32: return CUDA_R_32F;
    case DType::BF16: return CUDA_R_16BF;
    case DType::F16: return CUDA_R_16F;
    default: throw std::runtime_error("cuBLASLt GEMM needs f32, bf16 or f16 operands");
  }
}

struct Layout {
  cublasLtMatrixLayout_t l = nullptr;
  Layout(cudaDataType_t t, int64_t rows, int64_t cols, int64_t ld, int64_t batch, int64_t stride) {
    FORGE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&l, t, uint64_t(rows), uint64_t(cols), ld));
    if (batch > 1) {
      int32_t b = int32_t(batch);
      FORGE_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &b, sizeof b));
      FORGE_CUBLAS_CHECK(
          cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride));
    }
  }
  ~Layout() {
    if (l) cublasLtMatrixLayoutDestroy(l);
  }
};
}  // namespace

void gemm(DType dt, DType c_dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const void* A,
          int64_t lda, int64_t stride_a, const void* B, int64_t ldb, int64_t stride_b, float beta, void* C,
          int64_t ldc, int64_t stride_c, int64_t batch, int device) {
  if (M == 0 || N == 0 || batch == 0) return;
  cudaStream_t stream = stream_for(device);
  LtState& st = lt_state(device);
  cudaDataType_t ab = cuda_type(dt), ct = cuda_type(c_dt);

  cublasLtMatmulDesc_t op;
  FORGE_CUBLAS_CHECK(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  // Column-major C^T[N, M] = op(B)^T [N, K] @ op(A)^T [K, M]: B is cuBLAS's first operand.
  cublasOperation_t opa = tb ? CUBLAS_OP_T : CUBLAS_OP_N, opb = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  FORGE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa));
  FORGE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb));
  Layout la(ab, tb ? K : N, tb ? N : K, ldb, batch, stride_b);
  Layout lb(ab, ta ? M : K, ta ? K : M, lda, batch, stride_a);
  Layout lc(ct, N, M, ldc, batch, stride_c);

  cublasLtMatmulPreference_t pref;
  FORGE_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  size_t ws = kWorkspace;
  FORGE_CUBLAS_CHECK(
      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
  cublasLtMatmulHeuristicResult_t heur;
  int found = 0;
  cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(st.handle, op, la.l, lb.l, lc.l, lc.l, pref, 1, &heur, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (hs != CUBLAS_STATUS_SUCCESS || found == 0) {
    cublasLtMatmulDescDestroy(op);
    throw std::runtime_error("cuBLASLt found no algorithm for this GEMM");
  }
  cublasStatus_t ms = cublasLtMatmul(st.handle, op, &alpha, B, la.l, A, lb.l, &beta, C, lc.l, C, lc.l, &heur.algo,
                                     st.workspace, kWorkspace, stream);
  cublasLtMatmulDescDestroy(op);
  FORGE_CUBLAS_CHECK(ms);
}

}  // namespace forge::cuda::gpu
