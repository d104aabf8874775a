// Fused optimiser kernels on the GPU: the contracts of kernels/cpu/optim.h on device pointers.
// Tensors go in chunks of up to kChunk per launch, their pointers passed by value in the kernel's
// parameters (no upload); blockIdx.y picks the tensor, blocks stride over its elements.
#include "kernels/cpu/optim.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/gpu.h"

namespace forge::cuda::gpu {
namespace {
constexpr int kChunk = 32, kThreads = 256, kMaxBlocks = 1024;

struct AdamWChunk {
  cpu::AdamWTensor t[kChunk];
};
struct SquaresChunk {
  cpu::SquaresTensor t[kChunk];
};

template <typename G, typename L>
__global__ void adamw_kernel(cpu::AdamWHyper h, AdamWChunk c) {
  const cpu::AdamWTensor& t = c.t[blockIdx.y];
  const G* g = static_cast<const G*>(t.g);
  L* lowp = static_cast<L*>(t.lowp);
  const float scale = h.grad_scale * (h.scale ? *h.scale : 1.0f);
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < t.n; i += int64_t(gridDim.x) * blockDim.x) {
    float p = t.p32[i], m = t.m[i], v = t.v[i];
    cpu::adamw_element(h, scale, load_f32(g + i), p, m, v);
    t.p32[i] = p;
    t.m[i] = m;
    t.v[i] = v;
    if (lowp) store_f32(lowp + i, p);
  }
}

// Each (tensor, block) writes its partial sum; the second pass adds a tensor's partials in order,
// so the result is the same in every run.
template <typename T>
__global__ void squares_kernel(SquaresChunk c, float* partial) {
  __shared__ float scratch[32];
  const cpu::SquaresTensor& t = c.t[blockIdx.y];
  const T* x = static_cast<const T*>(t.x);
  float acc = 0.0f;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < t.n; i += int64_t(gridDim.x) * blockDim.x) {
    const float v = load_f32(x + i);
    acc += v * v;
  }
  acc = block_sum(acc, scratch);
  if (threadIdx.x == 0) partial[blockIdx.y * gridDim.x + blockIdx.x] = acc;
}
__global__ void sum_partials_kernel(const float* partial, int blocks, float* out) {
  __shared__ float scratch[32];
  float acc = 0.0f;
  for (int b = threadIdx.x; b < blocks; b += blockDim.x) acc += partial[blockIdx.x * blocks + b];
  acc = block_sum(acc, scratch);
  if (threadIdx.x == 0) out[blockIdx.x] = acc;
}

unsigned blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return unsigned(b < 1 ? 1 : (b > kMaxBlocks ? kMaxBlocks : b));
}
}  // namespace

void adamw_multi(const cpu::AdamWHyper& h, DType g_dt, DType lowp_dt, const cpu::AdamWTensor* ts, int64_t count,
                 int device) {
  cudaStream_t s = stream_for(device);
  for (int64_t first = 0; first < count; first += kChunk) {
    const int k = int(count - first < kChunk ? count - first : kChunk);
    AdamWChunk c{};
    int64_t most = 0;
    for (int i = 0; i < k; ++i) {
      c.t[i] = ts[first + i];
      most = c.t[i].n > most ? c.t[i].n : most;
    }
    const dim3 grid(blocks_for(most), unsigned(k));
    dispatch_float(g_dt, [&](auto gt) {
      dispatch_float(lowp_dt, [&](auto lt) {
        adamw_kernel<decltype(gt), decltype(lt)><<<grid, kThreads, 0, s>>>(h, c);
      });
    });
    FORGE_CUDA_CHECK(cudaGetLastError());
  }
}

void sum_squares_multi(DType dt, const cpu::SquaresTensor* ts, int64_t count, float* out, int device) {
  cudaStream_t s = stream_for(device);
  for (int64_t first = 0; first < count; first += kChunk) {
    const int k = int(count - first < kChunk ? count - first : kChunk);
    SquaresChunk c{};
    int64_t most = 0;
    for (int i = 0; i < k; ++i) {
      c.t[i] = ts[first + i];
      most = c.t[i].n > most ? c.t[i].n : most;
    }
    const unsigned blocks = blocks_for(most);
    float* partial = static_cast<float*>(alloc(sizeof(float) * blocks * unsigned(k), device));
    dispatch_float(dt, [&](auto tag) {
      squares_kernel<decltype(tag)><<<dim3(blocks, unsigned(k)), kThreads, 0, s>>>(c, partial);
    });
    sum_partials_kernel<<<unsigned(k), kThreads, 0, s>>>(partial, int(blocks), out + first);
    const cudaError_t launched = cudaGetLastError();
    release(partial, device);  // stream-ordered: freed after the kernels that read it
    FORGE_CUDA_CHECK(launched);
  }
}

}  // namespace forge::cuda::gpu
