// Linked when Forge is built without nvcc: every GPU entry point says so (the simulated device,
// kernels/sim/, still serves forge::cuda when FORGE_SIMULATE_CUDA is set).
#include <stdexcept>

#include "kernels/cuda/gpu.h"

namespace forge::cuda::gpu {
namespace {
[[noreturn]] void no_cuda() {
  throw std::runtime_error("Forge was built without CUDA (nvcc was not found at configure time)");
}
}  // namespace

bool available() { return false; }
std::string status() { return "built without CUDA (nvcc not found at configure time)"; }
int device_count() { return 0; }
void* alloc(size_t, int) { no_cuda(); }
void release(void*, int) {}
size_t bytes_in_use(int) { return 0; }
size_t bytes_peak(int) { return 0; }
size_t bytes_reserved(int) { return 0; }
void memory_info(int, size_t*, size_t*) { no_cuda(); }
void copy_h2d(void*, const void*, size_t, int) { no_cuda(); }
void copy_d2h(void*, const void*, size_t, int) { no_cuda(); }
void copy_d2d(void*, const void*, size_t, int) { no_cuda(); }
void synchronize(int) { no_cuda(); }
void* stream(int) { no_cuda(); }
void unary(UnaryOp, DType, int, const int64_t*, void*, const int64_t*, const void*, const int64_t*, float, int) {
  no_cuda();
}
void binary(BinaryOp, DType, int, const int64_t*, void*, const int64_t*, const void*, const int64_t*, const void*,
            const int64_t*, int) {
  no_cuda();
}
void copy_cast(DType, DType, int, const int64_t*, void*, const int64_t*, const void*, const int64_t*, int) {
  no_cuda();
}
void where(DType, int, const int64_t*, void*, const int64_t*, const uint8_t*, const int64_t*, const void*,
           const int64_t*, const void*, const int64_t*, int) {
  no_cuda();
}
void fill(DType, int, const int64_t*, void*, const int64_t*, double, int) { no_cuda(); }
void gemm(DType, DType, bool, bool, int64_t, int64_t, int64_t, float, const void*, int64_t, int64_t, const void*,
          int64_t, int64_t, float, void*, int64_t, int64_t, int64_t, int) {
  no_cuda();
}
void embedding_fwd(DType, const void*, int64_t, int64_t, const int64_t*, int64_t, int64_t, void*, int) { no_cuda(); }
void embedding_bwd(DType, const void*, const int64_t*, int64_t, int64_t, float*, int) { no_cuda(); }
void rms_norm_fwd(DType, const void*, const void*, int64_t, int64_t, float, bool, void*, float*, int) { no_cuda(); }
void rms_norm_bwd(DType, const void*, const void*, const float*, const void*, int64_t, int64_t, bool, void*, float*,
                  int) {
  no_cuda();
}
void rope(DType, const void*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
          const int64_t*, int64_t, const float*, float, float, void*, int) {
  no_cuda();
}
void softmax_rows(DType, const void*, void*, int64_t, int64_t, bool, int) { no_cuda(); }
int64_t cross_entropy_fwd(DType, const void*, const int64_t*, int64_t, int64_t, int64_t, float*, float*, int) {
  no_cuda();
}
void cross_entropy_bwd(DType, const void*, const int64_t*, const float*, const float*, int64_t, int64_t, int64_t,
                       void*, int) {
  no_cuda();
}
void reduce_rows(cpu::ReduceOp, DType, const void*, int64_t, int64_t, float*, int) { no_cuda(); }
void reduce_cols(cpu::ReduceOp, DType, const void*, int64_t, int64_t, float*, int) { no_cuda(); }

void attention_fwd(const cpu::AttnShape&, const float*, cpu::AttnStrides, const float*, cpu::AttnStrides, const float*,
                   cpu::AttnStrides, float*, float*, int) {
  no_cuda();
}
void attention_bwd(const cpu::AttnShape&, const float*, cpu::AttnStrides, const float*, cpu::AttnStrides, const float*,
                   cpu::AttnStrides, const float*, const float*, const float*, float*, float*, float*, int) {
  no_cuda();
}

void paged_attention(DType, int64_t, const cpu::PagedAttnShape&, const float*, const void*, const void*,
                     const int32_t*, const int32_t*, const int32_t*, const int32_t*, float*, int) {
  no_cuda();
}
void paged_kv_write(DType, int64_t, int64_t, int64_t, int64_t, const float*, const float*, const int64_t*, void*, void*, int) {
  no_cuda();
}

void nf4_dequantize(const uint8_t*, const int8_t*, const float*, float, int64_t, DType, void*, int) { no_cuda(); }
void random_fill(float*, int64_t, uint64_t, uint64_t, bool, int) { no_cuda(); }
void adamw_multi(const cpu::AdamWHyper&, DType, DType, const cpu::AdamWTensor*, int64_t, int) { no_cuda(); }
void sum_squares_multi(DType, const cpu::SquaresTensor*, int64_t, float*, int) { no_cuda(); }

}  // namespace forge::cuda::gpu
