// Seeded draws (kernels/philox.h): out[i] = draw i of (seed, offset), uniform in [0, 1) or normal.
// The CUDA twin gives the same bits, so dropout masks agree across devices.
#pragma once
#include <cstdint>

namespace forge::cpu {

void random_fill(float* out, int64_t n, uint64_t seed, uint64_t offset, bool normal);

}  // namespace forge::cpu
