#include "peft/nf4.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "kernels/cpu/nf4.h"
#include "kernels/types.h"

namespace forge::peft {
namespace {

constexpr const float* kLevels = cpu::kNf4Levels;

// Midpoints between neighbouring levels: counting those below v finds the nearest level in a
// loop the compiler vectorises (16 compares against the table took 18 s for a 1B model).
constexpr auto kMid = [] {
  std::array<float, 15> m{};
  for (int k = 0; k < 15; ++k) m[size_t(k)] = 0.5f * (kLevels[k] + kLevels[k + 1]);
  return m;
}();

// The first of the closest levels, as an argmin over the table: the count of midpoints below v
// is the answer or its neighbour (rounding near a midpoint), so the neighbours settle it.
int settle_level(float v, int c) {
  if (c > 0 && std::fabs(v - kLevels[c - 1]) <= std::fabs(v - kLevels[c])) return c - 1;
  if (c < 15 && std::fabs(v - kLevels[c + 1]) < std::fabs(v - kLevels[c])) return c + 1;
  return c;
}

}  // namespace

Nf4Weight::Nf4Weight(const Tensor& w, Device device) {
  FORGE_CHECK(w.dim() == 2 && w.device().is_cpu(), "nf4: expected a 2-D CPU weight, got ", shape_str(w.shape()));
  out_ = w.size(0);
  in_ = w.size(1);
  // Blocks are read straight from the weight (often a bf16 memory-mapped file): no full f32 copy.
  const Tensor src = w.is_contiguous() && (w.dtype() == DType::F32 || w.dtype() == DType::BF16)
                         ? w
                         : w.to(DType::F32).contiguous();
  const float* sf = src.dtype() == DType::F32 ? src.data<float>() : nullptr;
  const bf16* sh = src.dtype() == DType::BF16 ? src.data<bf16>() : nullptr;
  const int64_t n = out_ * in_, nb = (n + kBlock - 1) / kBlock, ns = (nb + kScalerBlock - 1) / kScalerBlock;
  std::vector<float> amax(size_t(nb), 0.0f);
  Tensor codes = Tensor::zeros({(n + 1) / 2}, DType::U8);
  uint8_t* cp = codes.data<uint8_t>();
#pragma omp parallel for
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t lo = b * kBlock, len = std::min(n, lo + kBlock) - lo;
    float v[kBlock] = {}, scaled[kBlock];
    int32_t c[kBlock] = {};
    for (int64_t i = 0; i < len; ++i) v[i] = sf ? sf[lo + i] : to_f32(sh[lo + i]);
    float m = 0;
    for (int64_t i = 0; i < len; ++i) m = std::max(m, std::fabs(v[i]));
    amax[size_t(b)] = m;
    // Levels from the exact absmax; dequantisation uses the double-quantised one (as torchao).
    for (int64_t i = 0; i < kBlock; ++i) scaled[i] = m > 0 ? v[i] / m : 0.0f;
    for (int k = 0; k < 15; ++k)
      for (int64_t i = 0; i < kBlock; ++i) c[i] += scaled[i] > kMid[size_t(k)];
    for (int64_t i = 0; i < len; ++i) {
      const int code = settle_level(scaled[i], c[i]);
      cp[(lo + i) / 2] |= uint8_t(i % 2 ? code : code << 4);  // a block of 64 never splits a byte
    }
  }
  double sum = 0;
  for (float a : amax) sum += a;
  mean_ = float(sum / double(nb));
  Tensor absmax_q = Tensor::empty({nb}, DType::U8), factor = Tensor::empty({ns}, DType::F32);
  int8_t* aq = reinterpret_cast<int8_t*>(absmax_q.data<uint8_t>());
  float* fp = factor.data<float>();
  for (int64_t s = 0; s < ns; ++s) {
    const int64_t lo = s * kScalerBlock, hi = std::min(nb, lo + kScalerBlock);
    float m = 0;
    for (int64_t b = lo; b < hi; ++b) m = std::max(m, std::fabs(amax[size_t(b)] - mean_));
    const float f = m > 0 ? 256.0f / (2.0f * m) : 1.0f;
    fp[s] = f;
    for (int64_t b = lo; b < hi; ++b)
      aq[b] = int8_t(std::clamp(std::nearbyint((amax[size_t(b)] - mean_) * f), -128.0f, 127.0f));
  }
  codes_ = codes.to(device);
  absmax_q_ = absmax_q.to(device);
  factor_ = factor.to(device);
}

int Nf4Weight::code(int64_t i) const {
  return (codes_.narrow(0, i / 2, 1).to(Device::cpu()).data<uint8_t>()[0] >> (i % 2 ? 0 : 4)) & 15;
}

float Nf4Weight::absmax(int64_t b) const {
  const int8_t q = int8_t(absmax_q_.narrow(0, b, 1).to(Device::cpu()).data<uint8_t>()[0]);
  return float(q) / factor_.narrow(0, b / kScalerBlock, 1).item() + mean_;
}

Tensor Nf4Weight::dequantize(DType dtype) const {
  return nf4_dequantize(codes_, absmax_q_, factor_, mean_, {out_, in_}, dtype);
}

int64_t Nf4Weight::nbytes() const {
  return int64_t(codes_.nbytes() + absmax_q_.nbytes() + factor_.nbytes() + sizeof(float));
}

Tensor Nf4Weight::linear(const Tensor& x) const {
  FORGE_CHECK(x.size(-1) == in_, "nf4 linear: input has ", x.size(-1), " features, the weight ", in_);
  const DType dt = x.dtype() == DType::BF16 ? DType::BF16 : DType::F32;
  Tensor y;
  {
    NoGradGuard ng;
    y = forge::linear(x, dequantize(dt));
  }
  if (needs_grad({x})) {
    record("nf4_linear", {x}, y, [self = shared_from_this(), dt](const std::vector<Tensor>& g, const std::vector<bool>&) {
      // g W as linear(g, (W^T)): the GEMM path every Linear takes ([..., out] -> [..., in]).
      return std::vector<Tensor>{forge::linear(g[0], self->dequantize(dt).transpose(0, 1))};
    });
  }
  return y;
}

std::pair<int64_t, int64_t> quantize_nf4(nn::Module& model, Device device) {
  int64_t before = 0, after = 0;
  for (auto& [name, m] : model.named_modules()) {
    auto lin = std::dynamic_pointer_cast<nn::Linear>(m);
    if (!lin || !lin->weight.defined() || name == "lm_head" || name.ends_with(".lm_head")) continue;
    before += lin->weight.nbytes();
    auto q = std::make_shared<Nf4Weight>(lin->weight, device);
    after += q->nbytes();
    lin->quantize(q);
  }
  FORGE_CHECK(after > 0, "qlora: the model has no Linear layer to quantise");
  return {before, after};
}

}  // namespace forge::peft
