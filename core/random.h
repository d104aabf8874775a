// Seeded random numbers that are the same on every machine (Philox, see kernels/philox.h).
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace forge {

struct Generator {
  uint64_t seed = 0;
  uint64_t offset = 0;  // Philox blocks consumed so far
  explicit Generator(uint64_t s = 0) : seed(s) {}
  // Reserves `blocks` Philox blocks and returns the first.
  uint64_t advance(uint64_t blocks) {
    uint64_t o = offset;
    offset += blocks;
    return o;
  }
};

Generator& default_generator();
void manual_seed(uint64_t seed);

// New tensors (f32 draws, cast to dtype), drawn on `device` (the same bits on every device).
Tensor randn(const Shape& shape, DType dtype = DType::F32, Generator* gen = nullptr, Device device = Device::cpu());
Tensor rand(const Shape& shape, DType dtype = DType::F32, Generator* gen = nullptr,
            Device device = Device::cpu());  // [0, 1)
Tensor randint(int64_t low, int64_t high, const Shape& shape, DType dtype = DType::I64,
               Generator* gen = nullptr);  // [low, high)

// In-place initialisers (not recorded by autograd).
void uniform_(Tensor& t, double low, double high, Generator* gen = nullptr);
void normal_(Tensor& t, double mean, double std, Generator* gen = nullptr);

}  // namespace forge
