// forge::cuda: each function served by the GPU (gpu.h) or, under FORGE_SIMULATE_CUDA, by the
// simulated device (kernels/sim/sim.h), which runs the CPU twin of each kernel. One predictable
// branch per call; copies are counted here for both.
#include <atomic>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/layers.h"
#include "kernels/cpu/nf4.h"
#include "kernels/cpu/random.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/softmax.h"
#include "kernels/cuda/attention_dims.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/gpu.h"
#include "kernels/sim/sim.h"

namespace forge::cuda {
namespace {
std::atomic<int64_t> g_h2d{0}, g_d2h{0}, g_d2d{0}, g_h2d_bytes{0}, g_d2h_bytes{0};
}  // namespace

bool simulated() {
  static const bool on = sim::device_count() > 0;
  return on;
}
bool available() { return simulated() || gpu::available(); }
std::string status() { return simulated() ? sim::status() : gpu::status(); }
int device_count() { return simulated() ? sim::device_count() : gpu::device_count(); }

void* alloc(size_t nbytes, int device) { return simulated() ? sim::alloc(nbytes, device) : gpu::alloc(nbytes, device); }
void release(void* ptr, int device) { simulated() ? sim::release(ptr, device) : gpu::release(ptr, device); }
size_t bytes_in_use(int device) { return simulated() ? sim::bytes_in_use(device) : gpu::bytes_in_use(device); }
size_t bytes_peak(int device) { return simulated() ? sim::bytes_peak(device) : gpu::bytes_peak(device); }
size_t bytes_reserved(int device) {
  return simulated() ? sim::bytes_in_use(device) : gpu::bytes_reserved(device);  // the sim keeps nothing
}
void memory_info(int device, size_t* free_bytes, size_t* total_bytes) {
  simulated() ? sim::memory_info(device, free_bytes, total_bytes) : gpu::memory_info(device, free_bytes, total_bytes);
}

void copy_h2d(void* dst, const void* src, size_t nbytes, int device) {
  ++g_h2d;
  g_h2d_bytes += int64_t(nbytes);
  simulated() ? sim::copy_h2d(dst, src, nbytes, device) : gpu::copy_h2d(dst, src, nbytes, device);
}
void copy_d2h(void* dst, const void* src, size_t nbytes, int device) {
  ++g_d2h;
  g_d2h_bytes += int64_t(nbytes);
  simulated() ? sim::copy_d2h(dst, src, nbytes, device) : gpu::copy_d2h(dst, src, nbytes, device);
}
void copy_d2d(void* dst, const void* src, size_t nbytes, int device) {
  ++g_d2d;
  simulated() ? sim::copy_d2d(dst, src, nbytes, device) : gpu::copy_d2d(dst, src, nbytes, device);
}
void synchronize(int device) { simulated() ? sim::check_device(device) : gpu::synchronize(device); }
void* stream(int device) {
  if (!simulated()) return gpu::stream(device);
  sim::check_device(device);
  return nullptr;  // simulated kernels run in order on the calling thread
}

TransferStats transfer_stats() { return {g_h2d, g_d2h, g_d2d, g_h2d_bytes, g_d2h_bytes}; }

// ---- kernels: the simulated device runs the CPU twin on the same arguments -------------------
void unary(UnaryOp op, DType dt, int nd, const int64_t* shape, void* out, const int64_t* so, const void* x,
           const int64_t* sx, float s, int device) {
  if (simulated()) return sim::launch(device, cpu::unary, op, dt, nd, shape, out, so, x, sx, s);
  gpu::unary(op, dt, nd, shape, out, so, x, sx, s, device);
}
void binary(BinaryOp op, DType dt, int nd, const int64_t* shape, void* out, const int64_t* so, const void* a,
            const int64_t* sa, const void* b, const int64_t* sb, int device) {
  if (simulated()) return sim::launch(device, cpu::binary, op, dt, nd, shape, out, so, a, sa, b, sb);
  gpu::binary(op, dt, nd, shape, out, so, a, sa, b, sb, device);
}
void copy_cast(DType to, DType from, int nd, const int64_t* shape, void* out, const int64_t* so, const void* x,
               const int64_t* sx, int device) {
  if (simulated()) return sim::launch(device, cpu::copy_cast, to, from, nd, shape, out, so, x, sx);
  gpu::copy_cast(to, from, nd, shape, out, so, x, sx, device);
}
void where(DType dt, int nd, const int64_t* shape, void* out, const int64_t* so, const uint8_t* cond,
           const int64_t* sc, const void* a, const int64_t* sa, const void* b, const int64_t* sb, int device) {
  if (simulated()) return sim::launch(device, cpu::where, dt, nd, shape, out, so, cond, sc, a, sa, b, sb);
  gpu::where(dt, nd, shape, out, so, cond, sc, a, sa, b, sb, device);
}
void fill(DType dt, int nd, const int64_t* shape, void* out, const int64_t* so, double value, int device) {
  if (simulated()) return sim::launch(device, cpu::fill, dt, nd, shape, out, so, value);
  gpu::fill(dt, nd, shape, out, so, value, device);
}

void gemm(DType dt, DType c_dt, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const void* A,
          int64_t lda, int64_t stride_a, const void* B, int64_t ldb, int64_t stride_b, float beta, void* C,
          int64_t ldc, int64_t stride_c, int64_t batch, int device) {
  if (simulated())
    return sim::launch(device, sim::gemm, dt, c_dt, ta, tb, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta,
                       C, ldc, stride_c, batch);
  gpu::gemm(dt, c_dt, ta, tb, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc, stride_c, batch,
            device);
}

void embedding_fwd(DType dt, const void* weight, int64_t s_row, int64_t s_col, const int64_t* ids, int64_t N,
                   int64_t C, void* out, int device) {
  if (simulated()) return sim::launch(device, cpu::embedding_fwd, dt, weight, s_row, s_col, ids, N, C, out);
  gpu::embedding_fwd(dt, weight, s_row, s_col, ids, N, C, out, device);
}
void embedding_bwd(DType dt, const void* g, const int64_t* ids, int64_t N, int64_t C, float* gw, int device) {
  if (simulated()) return sim::launch(device, cpu::embedding_bwd, dt, g, ids, N, C, gw);
  gpu::embedding_bwd(dt, g, ids, N, C, gw, device);
}
void rms_norm_fwd(DType dt, const void* x, const void* w, int64_t N, int64_t C, float eps, bool unit_offset, void* y,
                  float* rstd, int device) {
  if (simulated()) return sim::launch(device, cpu::rms_norm_fwd, dt, x, w, N, C, eps, unit_offset, y, rstd);
  gpu::rms_norm_fwd(dt, x, w, N, C, eps, unit_offset, y, rstd, device);
}
void rms_norm_bwd(DType dt, const void* x, const void* w, const float* rstd, const void* g, int64_t N, int64_t C,
                  bool unit_offset, void* dx, float* dw, int device) {
  if (simulated()) return sim::launch(device, cpu::rms_norm_bwd, dt, x, w, rstd, g, N, C, unit_offset, dx, dw);
  gpu::rms_norm_bwd(dt, x, w, rstd, g, N, C, unit_offset, dx, dw, device);
}
void rope(DType dt, const void* x, int64_t B, int64_t H, int64_t T, int64_t D, int64_t R, int64_t sb, int64_t sh,
          int64_t st,
          const int64_t* pos, int64_t pos_sb, const float* inv_freq, float sign, float mscale, void* y,
          int device) {
  if (simulated())
    return sim::launch(device, cpu::rope, dt, x, B, H, T, D, R, sb, sh, st, pos, pos_sb, inv_freq, sign, mscale, y);
  gpu::rope(dt, x, B, H, T, D, R, sb, sh, st, pos, pos_sb, inv_freq, sign, mscale, y, device);
}

void softmax_rows(DType dt, const void* x, void* y, int64_t N, int64_t V, bool log, int device) {
  if (simulated()) return sim::launch(device, cpu::softmax_rows, dt, x, y, N, V, log);
  gpu::softmax_rows(dt, x, y, N, V, log, device);
}
int64_t cross_entropy_fwd(DType dt, const void* logits, const int64_t* target, int64_t N, int64_t V, int64_t ignore,
                          float* loss, float* lse, int device) {
  if (simulated()) return sim::launch(device, cpu::cross_entropy_fwd, dt, logits, target, N, V, ignore, loss, lse);
  return gpu::cross_entropy_fwd(dt, logits, target, N, V, ignore, loss, lse, device);
}
void cross_entropy_bwd(DType dt, const void* logits, const int64_t* target, const float* lse, const float* scale,
                       int64_t N, int64_t V, int64_t ignore, void* dlogits, int device) {
  if (simulated())
    return sim::launch(device, cpu::cross_entropy_bwd, dt, logits, target, lse, scale, N, V, ignore, dlogits);
  gpu::cross_entropy_bwd(dt, logits, target, lse, scale, N, V, ignore, dlogits, device);
}
void reduce_rows(cpu::ReduceOp op, DType dt, const void* x, int64_t M, int64_t R, float* out, int device) {
  if (simulated()) return sim::launch(device, cpu::reduce_rows, op, dt, x, M, R, out);
  gpu::reduce_rows(op, dt, x, M, R, out, device);
}
void reduce_cols(cpu::ReduceOp op, DType dt, const void* x, int64_t R, int64_t M, float* out, int device) {
  if (simulated()) return sim::launch(device, cpu::reduce_cols, op, dt, x, R, M, out);
  gpu::reduce_cols(op, dt, x, R, M, out, device);
}

bool attention_supports(int64_t head_dim) { return available() && attention_head_dim_supported(head_dim); }
void attention_fwd(const cpu::AttnShape& s, const float* q, cpu::AttnStrides qs, const float* k, cpu::AttnStrides ks,
                   const float* v, cpu::AttnStrides vs, float* o, float* lse, int device) {
  if (simulated()) return sim::launch(device, cpu::attention_fwd, s, q, qs, k, ks, v, vs, o, lse);
  gpu::attention_fwd(s, q, qs, k, ks, v, vs, o, lse, device);
}
void attention_bwd(const cpu::AttnShape& s, const float* q, cpu::AttnStrides qs, const float* k, cpu::AttnStrides ks,
                   const float* v, cpu::AttnStrides vs, const float* o, const float* dout, const float* lse, float* dq,
                   float* dk, float* dv, int device) {
  if (simulated()) return sim::launch(device, cpu::attention_bwd, s, q, qs, k, ks, v, vs, o, dout, lse, dq, dk, dv);
  gpu::attention_bwd(s, q, qs, k, ks, v, vs, o, dout, lse, dq, dk, dv, device);
}

void paged_attention(DType dt, int64_t N, const cpu::PagedAttnShape& s, const float* q, const void* k_cache,
                     const void* v_cache, const int32_t* block_tables, const int32_t* query_start,
                     const int32_t* context_lens, const int32_t* row_seq, float* out, int device) {
  if (simulated())
    return sim::launch(device, sim::paged_attention, dt, N, s, q, k_cache, v_cache, block_tables, query_start,
                       context_lens, out);
  gpu::paged_attention(dt, N, s, q, k_cache, v_cache, block_tables, query_start, context_lens, row_seq, out, device);
}
void paged_kv_write(DType dt, int64_t N, int64_t Hkv, int64_t D, int64_t block_size, const float* k, const float* v,
                    const int64_t* slots, void* k_cache, void* v_cache, int device) {
  if (simulated())
    return sim::launch(device, sim::paged_kv_write, dt, N, Hkv, D, block_size, k, v, slots, k_cache, v_cache);
  gpu::paged_kv_write(dt, N, Hkv, D, block_size, k, v, slots, k_cache, v_cache, device);
}

void nf4_dequantize(const uint8_t* codes, const int8_t* absmax_q, const float* factor, float mean, int64_t n,
                    DType dt, void* out, int device) {
  if (simulated()) return sim::launch(device, cpu::nf4_dequantize, codes, absmax_q, factor, mean, n, dt, out);
  gpu::nf4_dequantize(codes, absmax_q, factor, mean, n, dt, out, device);
}

void random_fill(float* out, int64_t n, uint64_t seed, uint64_t offset, bool normal, int device) {
  if (simulated()) return sim::launch(device, cpu::random_fill, out, n, seed, offset, normal);
  gpu::random_fill(out, n, seed, offset, normal, device);
}

// The lists carry device pointers inside host arrays: the simulated device translates each.
void adamw_multi(const cpu::AdamWHyper& h, DType g_dt, DType lowp_dt, const cpu::AdamWTensor* ts, int64_t count,
                 int device) {
  if (!simulated()) return gpu::adamw_multi(h, g_dt, lowp_dt, ts, count, device);
  sim::check_device(device);
  std::vector<cpu::AdamWTensor> host(ts, ts + count);
  for (cpu::AdamWTensor& t : host)
    t = {sim::detail::arg(device, t.p32), sim::detail::arg(device, t.g), sim::detail::arg(device, t.m),
         sim::detail::arg(device, t.v), sim::detail::arg(device, t.lowp), t.n};
  cpu::AdamWHyper hh = h;
  hh.scale = sim::detail::arg(device, h.scale);
  cpu::adamw_multi(hh, g_dt, lowp_dt, host.data(), count);
}
void sum_squares_multi(DType dt, const cpu::SquaresTensor* ts, int64_t count, float* out, int device) {
  if (!simulated()) return gpu::sum_squares_multi(dt, ts, count, out, device);
  sim::check_device(device);
  std::vector<cpu::SquaresTensor> host(ts, ts + count);
  for (cpu::SquaresTensor& t : host) t.x = sim::detail::arg(device, t.x);
  cpu::sum_squares_multi(dt, host.data(), count, static_cast<float*>(sim::host_address(out, device)));
}

}  // namespace forge::cuda
