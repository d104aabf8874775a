// Seeded random tensors from Philox: draw i depends only on (seed, offset, i).
#include "core/random.h"

#include <omp.h>

#include "core/error.h"
#include "kernels/philox.h"

namespace forge {

Generator& default_generator() {
  static Generator g(0);
  return g;
}

void manual_seed(uint64_t seed) {
  default_generator() = Generator(seed);
}

namespace {
// Fills a contiguous f32 CPU buffer with draws; normal uses 2 draws per block lane pair.
void draw(float* out, int64_t n, Generator& g, bool normal) {
  uint64_t blocks = normal ? uint64_t(n + 1) / 2 : uint64_t(n + 3) / 4;
  uint64_t off = g.advance(blocks);
  uint64_t seed = g.seed;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i)
    out[i] = normal ? philox_normal_at(seed, off, uint64_t(i)) : philox_uniform_at(seed, off, uint64_t(i));
}

Tensor drawn(const Shape& shape, DType dtype, Generator* gen, bool normal, double scale, double shift) {
  Tensor f = Tensor::empty(shape, DType::F32);
  float* p = f.data<float>();
  draw(p, f.numel(), gen ? *gen : default_generator(), normal);
  if (scale != 1.0 || shift != 0.0)
    for (int64_t i = 0; i < f.numel(); ++i) p[i] = float(p[i] * scale + shift);
  return dtype == DType::F32 ? f : f.to(dtype);
}
}  // namespace

Tensor randn(const Shape& shape, DType dtype, Generator* gen) { return drawn(shape, dtype, gen, true, 1, 0); }
Tensor rand(const Shape& shape, DType dtype, Generator* gen) { return drawn(shape, dtype, gen, false, 1, 0); }

Tensor randint(int64_t low, int64_t high, const Shape& shape, DType dtype, Generator* gen) {
  FORGE_CHECK(high > low, "randint: empty range [", low, ", ", high, ")");
  Tensor u = drawn(shape, DType::F32, gen, false, 1, 0);
  Tensor out = Tensor::empty(shape, DType::I64);
  const float* p = u.data<float>();
  int64_t* o = out.data<int64_t>();
  for (int64_t i = 0; i < u.numel(); ++i) o[i] = std::min(high - 1, low + int64_t(double(p[i]) * double(high - low)));
  return dtype == DType::I64 ? out : out.to(dtype);
}

void uniform_(Tensor& t, double low, double high, Generator* gen) {
  t.copy_(drawn(t.shape(), DType::F32, gen, false, high - low, low));
}

void normal_(Tensor& t, double mean, double std, Generator* gen) {
  t.copy_(drawn(t.shape(), DType::F32, gen, true, std, mean));
}

}  // namespace forge
