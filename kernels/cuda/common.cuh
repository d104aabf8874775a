// Shared CUDA helpers: error checks and the per-device stream every Forge kernel runs on.
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#define FORGE_CUDA_CHECK(expr)                                                                      \
  do {                                                                                              \
    cudaError_t err_ = (expr);                                                                      \
    if (err_ != cudaSuccess)                                                                        \
      throw std::runtime_error(std::string("CUDA error: ") + cudaGetErrorString(err_) + " at " #expr); \
  } while (0)

namespace forge::cuda {
// The stream Forge uses on `device` (created on first use); also makes `device` current.
cudaStream_t stream_for(int device);
}  // namespace forge::cuda
