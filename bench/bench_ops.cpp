// `forge bench ops`: GEMM throughput per backend and dtype at square and Llama shapes (and the
// stories15M LM head at decode batch 32), as matmul (A B) and as linear (A W^T); the linear layers
// of a stories15M decode step at 32 sequences with weights stored either way; tiled attention
// forward+backward time (B 8, H 8, D 64, T 256 and 1024); and paged attention per layer of a decode
// step (32 sequences of 192 cached tokens, blocks scattered through the pool, 6 layers' caches).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <numeric>
#include <random>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "bench/bench.h"
#include "core/autograd.h"
#include "core/nn.h"
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
  std::vector<Shape3> shapes = {{1024, 1024, 1024}, {4096, 288, 768}, {4096, 768, 2048}, {32, 288, 32000}};
  const cpu::GemmBackend chosen = cpu::gemm_backend();
  for (const Shape3& s : shapes) {
    std::string shape = std::to_string(s.M) + "x" + std::to_string(s.K) + "x" + std::to_string(s.N);
    Tensor a = randn({s.M, s.K}), b = randn({s.K, s.N});
    double flops = 2.0 * double(s.M) * double(s.N) * double(s.K);
    Tensor w = b.t().contiguous();  // b as a Linear weight [N, K]
    NoGradGuard ng;
    for (auto be : {cpu::GemmBackend::OneDNN, cpu::GemmBackend::OpenBLAS, cpu::GemmBackend::Eigen}) {
      cpu::set_gemm_backend(be);
      double sec = time_median([&] { matmul(a, b); }, 3, budget);
      report({"gemm", shape, "f32", cpu::gemm_backend_name(be), "GFLOP/s", threads, flops / sec / 1e9}, json);
      sec = time_median([&] { linear(a, w); }, 3, budget);
      report({"linear", shape, "f32", cpu::gemm_backend_name(be), "GFLOP/s", threads, flops / sec / 1e9}, json);
    }
    cpu::set_gemm_backend(chosen);
    Tensor ab = a.to(DType::BF16), bb = b.to(DType::BF16);
    double sec = time_median([&] { matmul(ab, bb); }, 3, budget);
    report({"gemm", shape, "bf16", "onednn", "GFLOP/s", threads, flops / sec / 1e9}, json);
  }
  for (DType dt : {DType::F32, DType::BF16})
    for (int64_t M : {1, 32}) {
      // The linear layers of one stories15M decode step at M sequences (6 layers' q, k, v, o, gate, up,
      // down, then the tied LM head), each weight read once per step as in serving: weights stored
      // [out, in] (training), column-major (serving's store_weights_transposed) and packed into
      // panels (serving's decode twin, pack_for_decode).
      const int64_t C = 288, F = 768, V = 32000;
      std::vector<Tensor> ws;
      for (int l = 0; l < 6; ++l)
        for (auto [o, i] : {std::pair{C, C}, {C, C}, {C, C}, {C, C}, {F, C}, {F, C}, {C, F}})
          ws.push_back(randn({o, i}).to(dt));
      ws.push_back(randn({V, C}).to(dt));
      double flops = 0;
      for (auto& w : ws) flops += 2.0 * double(M) * double(w.size(0)) * double(w.size(1));
      Tensor xc = randn({M, C}).to(dt), xf = randn({M, F}).to(dt);
      NoGradGuard ng;
      for (bool col_major : {false, true}) {
        std::vector<Tensor> wl;
        for (auto& w : ws) wl.push_back(col_major ? w.t().contiguous().t() : w);
        double sec = time_median([&] {
          for (auto& w : wl) linear(w.size(1) == C ? xc : xf, w);
        }, 5, budget);
        report({"linear", "S" + std::to_string(M) + " stories15M step", dtype_name(dt),
                col_major ? "W^T store" : "W store", "GFLOP/s", threads, flops / sec / 1e9}, json);
      }
      if (!nn::packable(ws[0])) continue;  // bf16 only with AVX512-BF16
      std::vector<Tensor> packed;
      for (auto& w : ws) packed.push_back(pack_linear_weight(w));
      double sec = time_median([&] {
        for (size_t i = 0; i < ws.size(); ++i) linear_packed(ws[i].size(1) == C ? xc : xf, packed[i], ws[i].size(0));
      }, 5, budget);
      report({"linear", "S" + std::to_string(M) + " stories15M step", dtype_name(dt), "packed", "GFLOP/s", threads,
              flops / sec / 1e9}, json);
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
  for (DType dt : {DType::F32, DType::BF16}) {
    // stories15M's attention shape: 6 heads of 48; a decode row per sequence.
    const int64_t S = 32, H = 6, D = 48, bs = 16, ctx = 192, per_seq = ctx / bs, pool = 4 * S * per_seq;
    constexpr int kLayers = 6;
    std::vector<Tensor> kcs, vcs;
    for (int l = 0; l < kLayers; ++l) {
      kcs.push_back(randn({pool, H, D, bs}).to(dt));
      vcs.push_back(randn({pool, H, bs, D}).to(dt));
    }
    std::vector<int64_t> ord(static_cast<size_t>(pool - 1)), slots;
    std::iota(ord.begin(), ord.end(), 0);
    std::shuffle(ord.begin(), ord.end(), std::mt19937(3));
    std::vector<int32_t> table, qs, lens, row_seq;
    for (int64_t s = 0; s < S; ++s) {
      for (int64_t b = 0; b < per_seq; ++b) table.push_back(int32_t(ord[size_t(s * per_seq + b)] + 1));
      qs.push_back(int32_t(s));
      lens.push_back(int32_t(ctx));
      row_seq.push_back(int32_t(s));
      slots.push_back(int64_t(table.back()) * bs + bs - 1);
    }
    qs.push_back(int32_t(S));
    PagedBatch b{Tensor::from_vector(slots, {S}), Tensor::from_vector(table, {S, per_seq}),
                 Tensor::from_vector(qs, {S + 1}), Tensor::from_vector(lens, {S}), Tensor::from_vector(row_seq, {S})};
    Tensor q = randn({S, H, D});
    NoGradGuard ng;
    // Six layers' caches in turn, as a decode step reads them: the cache comes from memory.
    double sec = time_median([&] {
      for (int l = 0; l < kLayers; ++l) paged_attention(q, kcs[size_t(l)], vcs[size_t(l)], b);
    }, 5, budget) / kLayers;
    report({"paged_attn", "S32 ctx192 H6 D48", dtype_name(dt), "decode/layer", "ms", threads, sec * 1e3}, json);
  }
  for (DType dt : {DType::F32, DType::BF16}) {
    // Prefill: 16 prompts of 128 tokens in one packed batch (one layer), stories15M's heads.
    const int64_t S = 16, H = 6, D = 48, bs = 16, P = 128, per_seq = P / bs, pool = S * per_seq + 1;
    Tensor kc = randn({pool, H, D, bs}).to(dt), vc = randn({pool, H, bs, D}).to(dt);
    std::vector<int32_t> table, qs{0}, lens, row_seq;
    std::vector<int64_t> slots;
    for (int64_t s = 0; s < S; ++s) {
      for (int64_t b = 0; b < per_seq; ++b) table.push_back(int32_t(1 + s * per_seq + b));
      for (int64_t t = 0; t < P; ++t) {
        slots.push_back(int64_t(table[size_t(s * per_seq + t / bs)]) * bs + t % bs);
        row_seq.push_back(int32_t(s));
      }
      qs.push_back(int32_t((s + 1) * P));
      lens.push_back(int32_t(P));
    }
    PagedBatch b{Tensor::from_vector(slots, {S * P}), Tensor::from_vector(table, {S, per_seq}),
                 Tensor::from_vector(qs, {S + 1}), Tensor::from_vector(lens, {S}), Tensor::from_vector(row_seq, {S * P})};
    Tensor q = randn({S * P, H, D});
    NoGradGuard ng;
    const double sec = time_median([&] { paged_attention(q, kc, vc, b); }, 5, budget);
    const double flops = 2.0 * 2.0 * double(S * H * D) * double(P) * double(P + 1) / 2;  // causal QK^T and PV
    report({"paged_attn", "S16 P128 H6 D48", dtype_name(dt), "prefill/layer", "GFLOP/s", threads, flops / sec / 1e9},
           json);
    report({"paged_attn", "S16 P128 H6 D48", dtype_name(dt), "prefill/layer", "ms", threads, sec * 1e3}, json);
  }
  return 0;
}

}  // namespace forge::bench
