// `forge bench ops`: GEMM throughput per backend and dtype at square and Llama shapes, and
// tiled attention forward+backward time (B 8, H 8, D 64, T 256 and 1024).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "bench/bench.h"
#include "core/autograd.h"
#include "core/ops.h"
#include "kernels/cpu/gemm.h"

namespace forge::bench {

void report(const Measurement& m, bool json) {
  if (json) {
    nlohmann::json j{{"name", m.name}, {"shape", m.shape}, {"dtype", m.dtype}, {"threads", m.threads},
                     {"value", m.value}, {"unit", m.unit}};
    if (!m.backend.empty()) j["backend"] = m.backend;
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("%-10s %-18s %-5s %-9s %2d threads  %9.2f %s\n", m.name.c_str(), m.shape.c_str(), m.dtype.c_str(),
                m.backend.c_str(), m.threads, m.value, m.unit.c_str());
  }
  std::fflush(stdout);
}

double time_median(const std::function<void()>& fn, int min_runs, double budget_s) {
  using clock = std::chrono::steady_clock;
  fn();  // warm up (caches, primitive creation, page faults)
  std::vector<double> t;
  auto start = clock::now();
  while (int(t.size()) < min_runs || std::chrono::duration<double>(clock::now() - start).count() < budget_s) {
    auto a = clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(clock::now() - a).count());
    if (t.size() >= 50) break;
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

int bench_ops(bool json, bool quick) {
  const int threads = omp_get_max_threads();
  const double budget = quick ? 0.2 : 1.0;
  struct Shape3 {
    int64_t M, K, N;
  };
  std::vector<Shape3> shapes = {{1024, 1024, 1024}, {4096, 288, 768}, {4096, 768, 2048}};
  const cpu::GemmBackend chosen = cpu::gemm_backend();
  for (const Shape3& s : shapes) {
    std::string shape = std::to_string(s.M) + "x" + std::to_string(s.K) + "x" + std::to_string(s.N);
    Tensor a = randn({s.M, s.K}), b = randn({s.K, s.N});
    double flops = 2.0 * double(s.M) * double(s.N) * double(s.K);
    NoGradGuard ng;
    for (auto be : {cpu::GemmBackend::OneDNN, cpu::GemmBackend::OpenBLAS, cpu::GemmBackend::Eigen}) {
      cpu::set_gemm_backend(be);
      double sec = time_median([&] { matmul(a, b); }, 3, budget);
      report({"gemm", shape, "f32", cpu::gemm_backend_name(be), "GFLOP/s", threads, flops / sec / 1e9}, json);
    }
    cpu::set_gemm_backend(chosen);
    Tensor ab = a.to(DType::BF16), bb = b.to(DType::BF16);
    double sec = time_median([&] { matmul(ab, bb); }, 3, budget);
    report({"gemm", shape, "bf16", "onednn", "GFLOP/s", threads, flops / sec / 1e9}, json);
  }
  for (int64_t T : {256, 1024}) {
    const int64_t B = 8, H = 8, D = 64;
    Tensor q = randn({B, H, T, D}).requires_grad_(), k = randn({B, H, T, D}).requires_grad_(),
           v = randn({B, H, T, D}).requires_grad_();
    Tensor g = randn({B, H, T, D});
    double sec = time_median(
        [&] {
          Tensor o = scaled_dot_product_attention(q, k, v);
          o.backward(g);
        },
        2, budget);
    std::string shape = "B8 H8 T" + std::to_string(T) + " D64";
    report({"attention", shape, "f32", "causal fwd+bwd", "ms", threads, sec * 1e3}, json);
  }
  return 0;
}

}  // namespace forge::bench
