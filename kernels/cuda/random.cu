// Seeded draws on the GPU: the contract of kernels/cpu/random.h, the same Philox bits.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/gpu.h"
#include "kernels/philox.h"

namespace forge::cuda::gpu {
namespace {
__global__ void random_kernel(float* out, int64_t n, uint64_t seed, uint64_t offset, bool normal) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = normal ? philox_normal_at(seed, offset, uint64_t(i)) : philox_uniform_at(seed, offset, uint64_t(i));
}
}  // namespace

void random_fill(float* out, int64_t n, uint64_t seed, uint64_t offset, bool normal, int device) {
  if (n == 0) return;
  random_kernel<<<unsigned((n + 255) / 256), 256, 0, stream_for(device)>>>(out, n, seed, offset, normal);
  FORGE_CUDA_CHECK(cudaGetLastError());
}

}  // namespace forge::cuda::gpu
