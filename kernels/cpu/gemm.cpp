// CPU GEMM backends: OpenBLAS (OpenMP build), oneDNN (sgemm + bf16 matmul primitive), Eigen.
#include "kernels/cpu/gemm.h"

#include <cblas.h>
#include <omp.h>

#include <Eigen/Dense>
#include <cstdlib>
#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <stdexcept>
#include <string>
#include <tuple>

namespace forge::cpu {
namespace {

// AMX tile instructions are reported to fault on these VMs although CPUID advertises them, so
// oneDNN's ISA is capped at AVX512-BF16 unless FORGE_ALLOW_AMX=1 (or ONEDNN_MAX_CPU_ISA) says otherwise.
void limit_onednn_isa() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* amx = std::getenv("FORGE_ALLOW_AMX");
    bool allow = amx && std::string(amx) == "1";
    if (!allow && !std::getenv("ONEDNN_MAX_CPU_ISA")) dnnl::set_max_cpu_isa(dnnl::cpu_isa::avx512_core_bf16);
  });
}

GemmBackend initial_backend() {
  if (const char* e = std::getenv("FORGE_GEMM")) return gemm_backend_from_name(e);
  return GemmBackend::OneDNN;  // fastest on the benchmark, see docs/architecture.md
}
GemmBackend g_backend = initial_backend();

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMat, 0, Eigen::OuterStride<>>;
using MutMap = Eigen::Map<RowMat, 0, Eigen::OuterStride<>>;

void gemm_eigen(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  // Eigen runs single-threaded here; split the rows of C over the OpenMP threads.
  int nt = (M * N * K < (1 << 18)) ? 1 : omp_get_max_threads();
#pragma omp parallel num_threads(nt)
  {
    int t = omp_get_thread_num(), n = omp_get_num_threads();
    int64_t r0 = M * t / n, r1 = M * (t + 1) / n;
    if (r1 > r0) {
      int64_t rows = r1 - r0;
      MutMap c(C + r0 * ldc, rows, N, Eigen::OuterStride<>(ldc));
      ConstMap b(B, tb ? N : K, tb ? K : N, Eigen::OuterStride<>(ldb));
      if (beta == 0.0f) c.setZero();
      else if (beta != 1.0f) c *= beta;
      if (!ta) {
        ConstMap a(A + r0 * lda, rows, K, Eigen::OuterStride<>(lda));
        if (tb) c.noalias() += alpha * a * b.transpose();
        else c.noalias() += alpha * a * b;
      } else {
        ConstMap a(A + r0, K, rows, Eigen::OuterStride<>(lda));
        if (tb) c.noalias() += alpha * a.transpose() * b.transpose();
        else c.noalias() += alpha * a.transpose() * b;
      }
    }
  }
}

// bf16 x bf16 -> f32 through a cached oneDNN matmul primitive per problem shape.
struct Bf16Key {
  bool ta, tb;
  int64_t M, N, K, lda, ldb, ldc;
  float alpha, beta;
  bool operator<(const Bf16Key& o) const {
    return std::tie(ta, tb, M, N, K, lda, ldb, ldc, alpha, beta) <
           std::tie(o.ta, o.tb, o.M, o.N, o.K, o.lda, o.ldb, o.ldc, o.alpha, o.beta);
  }
};

struct Bf16Prim {
  dnnl::matmul prim;
  dnnl::memory::desc a, b, c;
};

dnnl::engine& cpu_engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

}  // namespace

GemmBackend gemm_backend() { return g_backend; }
void set_gemm_backend(GemmBackend b) { g_backend = b; }

GemmBackend gemm_backend_from_name(const std::string& n) {
  if (n == "openblas") return GemmBackend::OpenBLAS;
  if (n == "onednn" || n == "dnnl") return GemmBackend::OneDNN;
  if (n == "eigen") return GemmBackend::Eigen;
  throw std::runtime_error("unknown GEMM backend '" + n + "' (expected openblas, onednn or eigen)");
}

const char* gemm_backend_name(GemmBackend b) {
  switch (b) {
    case GemmBackend::OpenBLAS: return "openblas";
    case GemmBackend::OneDNN: return "onednn";
    case GemmBackend::Eigen: return "eigen";
  }
  return "?";
}

void gemm_f32(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
              int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {  // C = beta * C
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
    return;
  }
  switch (g_backend) {
    case GemmBackend::OpenBLAS:
      cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K,
                  alpha, A, lda, B, ldb, beta, C, ldc);
      return;
    case GemmBackend::OneDNN: {
      limit_onednn_isa();
      auto st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
      if (st != dnnl_success) throw std::runtime_error("oneDNN sgemm failed");
      return;
    }
    case GemmBackend::Eigen:
      return gemm_eigen(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
}

void gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const bf16* A,
               int64_t lda, const bf16* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  limit_onednn_isa();
  using dt = dnnl::memory::data_type;
  using md = dnnl::memory::desc;
  static std::mutex mu;
  static std::map<Bf16Key, Bf16Prim> cache;
  Bf16Key key{ta, tb, M, N, K, lda, ldb, ldc, alpha, beta};
  Bf16Prim* p;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(key);
    if (it == cache.end()) {
      md a({M, K}, dt::bf16, ta ? dnnl::memory::dims{1, lda} : dnnl::memory::dims{lda, 1});
      md b({K, N}, dt::bf16, tb ? dnnl::memory::dims{1, ldb} : dnnl::memory::dims{ldb, 1});
      md c({M, N}, dt::f32, dnnl::memory::dims{ldc, 1});
      dnnl::primitive_attr attr;
      if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
      if (beta != 0.0f) {
        dnnl::post_ops po;
        po.append_sum(beta);
        attr.set_post_ops(po);
      }
      dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), attr, cpu_engine());
      it = cache.emplace(key, Bf16Prim{dnnl::matmul(pd), a, b, c}).first;
    }
    p = &it->second;
  }
  dnnl::stream s(cpu_engine());
  dnnl::memory ma(p->a, cpu_engine(), const_cast<bf16*>(A));
  dnnl::memory mb(p->b, cpu_engine(), const_cast<bf16*>(B));
  dnnl::memory mc(p->c, cpu_engine(), C);
  p->prim.execute(s, {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}});
  s.wait();
}

}  // namespace forge::cpu
