// Philox4x32-10 counter-based generator: element i of a draw depends only on (seed, counter),
// so CPU and GPU produce the same numbers in any order, on any machine.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/types.h"

namespace forge {

struct Philox4 {
  uint32_t v[4];
};

// The full generator: 128-bit counter (c0..c3), 64-bit key (k0, k1); Random123's test vectors apply.
FORGE_HD Philox4 philox4x32_raw(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
  for (int r = 0; r < 10; ++r) {
    uint64_t p0 = uint64_t(0xD2511F53u) * c0;
    uint64_t p1 = uint64_t(0xCD9E8D57u) * c2;
    uint32_t n0 = uint32_t(p1 >> 32) ^ c1 ^ k0;
    uint32_t n2 = uint32_t(p0 >> 32) ^ c3 ^ k1;
    c1 = uint32_t(p1);
    c3 = uint32_t(p0);
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {{c0, c1, c2, c3}};
}

FORGE_HD Philox4 philox4x32(uint64_t counter, uint64_t seed) {
  return philox4x32_raw(uint32_t(counter), uint32_t(counter >> 32), 0, 0, uint32_t(seed), uint32_t(seed >> 32));
}

// Uniform in [0, 1) with 24 random bits.
FORGE_HD float philox_uniform(uint32_t x) { return float(x >> 8) * 5.9604644775390625e-08f; }

// Element i of a uniform draw that started at `offset`.
FORGE_HD float philox_uniform_at(uint64_t seed, uint64_t offset, uint64_t i) {
  return philox_uniform(philox4x32(offset + i / 4, seed).v[i % 4]);
}

// Element i of a standard normal draw (Box-Muller on lanes 2k, 2k+1 of block offset + i/2).
FORGE_HD float philox_normal_at(uint64_t seed, uint64_t offset, uint64_t i) {
  Philox4 r = philox4x32(offset + i / 2, seed);
  int lane = int(i % 2) * 2;
  float u1 = 1.0f - philox_uniform(r.v[lane]);  // (0, 1]
  float u2 = philox_uniform(r.v[lane + 1]);
  return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530717958648f * u2);
}

}  // namespace forge
