// The CUDA backend as core sees it: memory, copies, elementwise kernels and cuBLASLt GEMM.
// kernels/cuda/dispatch.cpp serves each function from the GPU (kernels/cuda/*.cu when nvcc is
// present, else no_cuda.cpp, which reports "built without CUDA"), or, when FORGE_SIMULATE_CUDA=N
// is set, from N simulated devices (kernels/sim/): the CPU kernels on memory the host cannot
// touch, so that tests run every caller's CUDA path on a machine without a GPU.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/cpu/attention.h"  // AttnShape, AttnStrides
#include "kernels/cpu/paged_attention.h"  // PagedAttnShape
#include "kernels/cpu/optim.h"      // AdamWHyper, AdamWTensor, SquaresTensor
#include "kernels/cpu/reduce.h"     // ReduceOp
#include "kernels/elementwise_ops.h"

namespace forge::cuda {

bool simulated();            // FORGE_SIMULATE_CUDA is set: the devices are simulated
bool available();            // built with CUDA and at least one usable device (or simulated)
std::string status();        // why not, or the device names
int device_count();

// Stream-ordered caching allocator (cudaMallocAsync pool) on the device's current stream.
void* alloc(size_t nbytes, int device);
void release(void* ptr, int device);
size_t bytes_in_use(int device);
size_t bytes_peak(int device);
size_t bytes_reserved(int device);  // held by the pool: in use plus freed blocks kept for reuse
// The device's free and total memory as the driver sees it (a simulated device: its limit,
// FORGE_SIMULATE_CUDA_MEMORY_MB, less what is allocated).
void memory_info(int device, size_t* free_bytes, size_t* total_bytes);

// Host to device: returns once the bytes are staged (pinned, up to 32 MiB; larger copies wait), the
// copy itself runs in stream order behind the work already queued; src may be reused at once.
void copy_h2d(void* dst, const void* src, size_t nbytes, int device);
void copy_d2h(void* dst, const void* src, size_t nbytes, int device);
void copy_d2d(void* dst, const void* src, size_t nbytes, int device);
void synchronize(int device);
// Copies between host and device memory since the process started, counted for real and
// simulated devices alike (core/device_stats.h adds host fallbacks; tests hold a step to a budget).
struct TransferStats {
  int64_t h2d = 0, d2h = 0, d2d = 0, h2d_bytes = 0, d2h_bytes = 0;
};
TransferStats transfer_stats();
// The device's stream (a cudaStream_t), for libraries that enqueue on it (NCCL).
void* stream(int device);

// Same contracts as the CPU kernels in kernels/cpu/elementwise.h, on device pointers.
void unary(UnaryOp op, DType dt, int ndim, const int64_t* shape, void* out, const int64_t* so,
           const void* x, const int64_t* sx, float s, int device);
void binary(BinaryOp op, DType dt, int ndim, const int64_t* shape, void* out, const int64_t* so,
            const void* a, const int64_t* sa, const void* b, const int64_t* sb, int device);
void copy_cast(DType to, DType from, int ndim, const int64_t* shape, void* out, const int64_t* so,
               const void* x, const int64_t* sx, int device);
void where(DType dt, int ndim, const int64_t* shape, void* out, const int64_t* so, const uint8_t* cond,
           const int64_t* sc, const void* a, const int64_t* sa, const void* b, const int64_t* sb, int device);
void fill(DType dt, int ndim, const int64_t* shape, void* out, const int64_t* so, double value, int device);

// Row-major strided-batched GEMM through cuBLASLt: C[b] = alpha * op(A[b]) @ op(B[b]) + beta * C[b].
// A/B in dt (f32, bf16 or f16), C in c_dt; fp32 accumulation.
void gemm(DType dt, DType c_dt, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
          const void* A, int64_t lda, int64_t stride_a, const void* B, int64_t ldb, int64_t stride_b,
          float beta, void* C, int64_t ldc, int64_t stride_c, int64_t batch, int device);

// Same contracts as kernels/cpu/layers.h (embedding, RMSNorm, rotary embedding).
void embedding_fwd(DType dt, const void* weight, int64_t s_row, int64_t s_col, const int64_t* ids, int64_t N,
                   int64_t C, void* out, int device);
void embedding_bwd(DType dt, const void* g, const int64_t* ids, int64_t N, int64_t C, float* gw, int device);
void rms_norm_fwd(DType dt, const void* x, const void* w, int64_t N, int64_t C, float eps, bool unit_offset, void* y,
                  float* rstd, int device);
void rms_norm_bwd(DType dt, const void* x, const void* w, const float* rstd, const void* g, int64_t N, int64_t C,
                  bool unit_offset, void* dx, float* dw, int device);
void rope(DType dt, const void* x, int64_t B, int64_t H, int64_t T, int64_t D, int64_t R, int64_t sb, int64_t sh,
          int64_t st,
          const int64_t* pos, int64_t pos_sb, const float* inv_freq, float sign, float mscale, void* y,
          int device);

// Same contracts as kernels/cpu/softmax.h and kernels/cpu/reduce.h.
void softmax_rows(DType dt, const void* x, void* y, int64_t N, int64_t V, bool log, int device);
int64_t cross_entropy_fwd(DType dt, const void* logits, const int64_t* target, int64_t N, int64_t V, int64_t ignore,
                          float* loss, float* lse, int device);
void cross_entropy_bwd(DType dt, const void* logits, const int64_t* target, const float* lse, const float* scale,
                       int64_t N, int64_t V, int64_t ignore, void* dlogits, int device);
void reduce_rows(cpu::ReduceOp op, DType dt, const void* x, int64_t M, int64_t R, float* out, int device);
void reduce_cols(cpu::ReduceOp op, DType dt, const void* x, int64_t R, int64_t M, float* out, int device);

// Training attention, same contracts as kernels/cpu/attention.h (s.doc a device pointer), for the
// head dims attention_supports() accepts; other head dims run on the host.
bool attention_supports(int64_t head_dim);
void attention_fwd(const cpu::AttnShape& s, const float* q, cpu::AttnStrides qs, const float* k, cpu::AttnStrides ks,
                   const float* v, cpu::AttnStrides vs, float* o, float* lse, int device);
void attention_bwd(const cpu::AttnShape& s, const float* q, cpu::AttnStrides qs, const float* k, cpu::AttnStrides ks,
                   const float* v, cpu::AttnStrides vs, const float* o, const float* dout, const float* lse, float* dq,
                   float* dk, float* dv, int device);

// Paged attention (see kernels/cpu/paged_attention.h for the layout); row_seq [N] gives the
// sequence of each query row. Cache dt: f32 or bf16; q/out f32.
void paged_attention(DType dt, int64_t N, const cpu::PagedAttnShape& s, const float* q, const void* k_cache,
                     const void* v_cache, const int32_t* block_tables, const int32_t* query_start,
                     const int32_t* context_lens, const int32_t* row_seq, float* out, int device);
void paged_kv_write(DType dt, int64_t N, int64_t Hkv, int64_t D, int64_t block_size, const float* k, const float* v,
                    const int64_t* slots, void* k_cache, void* v_cache, int device);

// QLoRA's NF4 weights, the contract of kernels/cpu/nf4.h.
void nf4_dequantize(const uint8_t* codes, const int8_t* absmax_q, const float* factor, float mean, int64_t n,
                    DType dt, void* out, int device);

// Seeded draws, the contract of kernels/cpu/random.h (the same bits as the CPU's).
void random_fill(float* out, int64_t n, uint64_t seed, uint64_t offset, bool normal, int device);
// Fused optimiser kernels, the contracts of kernels/cpu/optim.h (the lists are host arrays of
// device pointers; out is device memory).
void adamw_multi(const cpu::AdamWHyper& h, DType g_dt, DType lowp_dt, const cpu::AdamWTensor* ts, int64_t count,
                 int device);
void sum_squares_multi(DType dt, const cpu::SquaresTensor* ts, int64_t count, float* out, int device);
}  // namespace forge::cuda
