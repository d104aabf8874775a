// The head dims the CUDA training-attention kernels are built for; others run on the host. The
// simulated device (kernels/sim/) accepts the same ones, so it takes the same paths.
#pragma once
#include <cstdint>

#define FORGE_ATTN_HEAD_DIMS(X) X(16) X(32) X(48) X(64) X(80) X(96) X(128)

namespace forge::cuda {
inline bool attention_head_dim_supported(int64_t d) {
#define FORGE_ATTN_IS(x) d == x ||
  return FORGE_ATTN_HEAD_DIMS(FORGE_ATTN_IS) false;
#undef FORGE_ATTN_IS
}
}  // namespace forge::cuda
