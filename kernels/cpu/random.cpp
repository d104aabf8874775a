// Seeded draws on the CPU (see random.h).
#include "kernels/cpu/random.h"

#include "kernels/philox.h"

namespace forge::cpu {

void random_fill(float* out, int64_t n, uint64_t seed, uint64_t offset, bool normal) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i)
    out[i] = normal ? philox_normal_at(seed, offset, uint64_t(i)) : philox_uniform_at(seed, offset, uint64_t(i));
}

}  // namespace forge::cpu
