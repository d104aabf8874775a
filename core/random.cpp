// Seeded random tensors from Philox: draw i depends only on (seed, offset, i).
#include "core/random.h"

#include "core/error.h"
#include "core/ops/common.h"
#include "kernels/cpu/random.h"
#include "kernels/cuda/cuda_backend.h"

namespace forge {

Generator& default_generator() {
  static Generator g(0);
  return g;
}

void manual_seed(uint64_t seed) {
  default_generator() = Generator(seed);
}

namespace {
// Draws into a new f32 tensor on `device`; on the CPU scaled and shifted in double, as before.
Tensor drawn(const Shape& shape, DType dtype, Generator* gen, bool normal, double scale, double shift,
             Device device = Device::cpu()) {
  Tensor f = Tensor::empty(shape, DType::F32, device);
  const int64_t n = f.numel();
  Generator& g = gen ? *gen : default_generator();
  const uint64_t off = g.advance(normal ? uint64_t(n + 1) / 2 : uint64_t(n + 3) / 4);
  detail::run_kernel(device, cpu::random_fill, cuda::random_fill, f.data<float>(), n, g.seed, off, normal);
  if (scale != 1.0 || shift != 0.0) {
    FORGE_CHECK(device.is_cpu(), "internal: scaled draws are made on the CPU");
    float* p = f.data<float>();
    for (int64_t i = 0; i < n; ++i) p[i] = float(p[i] * scale + shift);
  }
  return dtype == DType::F32 ? f : f.to(dtype);
}
}  // namespace

Tensor randn(const Shape& shape, DType dtype, Generator* gen, Device device) {
  return drawn(shape, dtype, gen, true, 1, 0, device);
}
Tensor rand(const Shape& shape, DType dtype, Generator* gen, Device device) {
  return drawn(shape, dtype, gen, false, 1, 0, device);
}

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
