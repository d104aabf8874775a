// NF4 dequantisation on the GPU: the contract of kernels/cpu/nf4.h on device pointers. One thread
// per code byte (two weights); a block's scale is recomputed per thread from the double-quantised
// absmax (two loads from cache), as cheap as reading a precomputed one.
#include "kernels/cpu/nf4.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/gpu.h"

namespace forge::cuda::gpu {
namespace {
__constant__ float kLevels[16] = FORGE_NF4_LEVELS;

template <typename T>
__global__ void nf4_kernel(const uint8_t* codes, const int8_t* absmax_q, const float* factor, float mean, int64_t n,
                           T* out) {
  const int64_t byte = int64_t(blockIdx.x) * blockDim.x + threadIdx.x, i = 2 * byte;
  if (i >= n) return;
  const int64_t b = i / cpu::kNf4Block;  // a block of 64 never splits a byte
  const float a = float(absmax_q[b]) / factor[b / cpu::kNf4ScalerBlock] + mean;
  const uint8_t c = codes[byte];
  store_f32(out + i, kLevels[c >> 4] * a);
  if (i + 1 < n) store_f32(out + i + 1, kLevels[c & 15] * a);
}
}  // namespace

void nf4_dequantize(const uint8_t* codes, const int8_t* absmax_q, const float* factor, float mean, int64_t n,
                    DType dt, void* out, int device) {
  if (n == 0) return;
  const int64_t bytes = (n + 1) / 2;
  const unsigned blocks = unsigned((bytes + 255) / 256);
  cudaStream_t st = stream_for(device);
  if (dt == DType::F32)
    nf4_kernel<<<blocks, 256, 0, st>>>(codes, absmax_q, factor, mean, n, static_cast<float*>(out));
  else if (dt == DType::BF16)
    nf4_kernel<<<blocks, 256, 0, st>>>(codes, absmax_q, factor, mean, n, static_cast<bf16*>(out));
  else
    throw std::runtime_error("nf4: dequantises to f32 or bf16");
  FORGE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace forge::cuda::gpu
