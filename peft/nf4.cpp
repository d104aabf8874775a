#include "peft/nf4.h"

#include <algorithm>
#include <cmath>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "kernels/types.h"

namespace forge::peft {
namespace {

// The NormalFloat4 levels of the QLoRA paper (bitsandbytes' table).
constexpr float kLevels[16] = {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
                               -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
                               0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f,
                               0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,
                               0.7229568362236023f, 1.0f};

int nearest_level(float v) {  // the first of the closest levels, as an argmin over the table
  int best = 0;
  float d = std::fabs(v - kLevels[0]);
  for (int k = 1; k < 16; ++k) {
    const float dk = std::fabs(v - kLevels[k]);
    if (dk < d) d = dk, best = k;
  }
  return best;
}

}  // namespace

Nf4Weight::Nf4Weight(const Tensor& w) {
  FORGE_CHECK(w.dim() == 2 && w.device().is_cpu(), "nf4: expected a 2-D CPU weight, got ", shape_str(w.shape()));
  out_ = w.size(0);
  in_ = w.size(1);
  const std::vector<float> v = w.to(DType::F32).contiguous().to_float_vector();
  const int64_t n = int64_t(v.size()), nb = (n + kBlock - 1) / kBlock, ns = (nb + kScalerBlock - 1) / kScalerBlock;
  std::vector<float> amax(size_t(nb), 0.0f);
  codes_.assign(size_t((n + 1) / 2), 0);
#pragma omp parallel for
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t lo = b * kBlock, hi = std::min(n, lo + kBlock);
    float m = 0;
    for (int64_t i = lo; i < hi; ++i) m = std::max(m, std::fabs(v[size_t(i)]));
    amax[size_t(b)] = m;
    // Levels from the exact absmax; dequantisation uses the double-quantised one (as torchao).
    for (int64_t i = lo; i < hi; ++i) {
      const int c = nearest_level(m > 0 ? v[size_t(i)] / m : 0.0f);
      codes_[size_t(i / 2)] |= uint8_t(i % 2 ? c : c << 4);  // a block of 64 never splits a byte
    }
  }
  double sum = 0;
  for (float a : amax) sum += a;
  mean_ = float(sum / double(nb));
  absmax_q_.resize(size_t(nb));
  factor_.resize(size_t(ns));
  for (int64_t s = 0; s < ns; ++s) {
    const int64_t lo = s * kScalerBlock, hi = std::min(nb, lo + kScalerBlock);
    float m = 0;
    for (int64_t b = lo; b < hi; ++b) m = std::max(m, std::fabs(amax[size_t(b)] - mean_));
    const float f = m > 0 ? 256.0f / (2.0f * m) : 1.0f;
    factor_[size_t(s)] = f;
    for (int64_t b = lo; b < hi; ++b)
      absmax_q_[size_t(b)] = int8_t(std::clamp(std::nearbyint((amax[size_t(b)] - mean_) * f), -128.0f, 127.0f));
  }
}

float Nf4Weight::absmax(int64_t b) const { return float(absmax_q_[size_t(b)]) / factor_[size_t(b / kScalerBlock)] + mean_; }

Tensor Nf4Weight::dequantize(DType dtype) const {
  FORGE_CHECK(dtype == DType::F32 || dtype == DType::BF16, "nf4: dequantises to f32 or bf16, not ", dtype_name(dtype));
  Tensor w = Tensor::empty({out_, in_}, dtype);
  const int64_t n = out_ * in_, nb = (n + kBlock - 1) / kBlock;
  float* f = dtype == DType::F32 ? w.data<float>() : nullptr;
  bf16* h = dtype == DType::BF16 ? w.data<bf16>() : nullptr;
#pragma omp parallel for if (n >= 65536)
  for (int64_t b = 0; b < nb; ++b) {
    const float a = absmax(b);
    const int64_t lo = b * kBlock, hi = std::min(n, lo + kBlock);
    for (int64_t i = lo; i < hi; ++i) {
      const float x = kLevels[code(i)] * a;
      if (f) f[i] = x;
      else h[i] = to_bf16(x);
    }
  }
  return w;
}

int64_t Nf4Weight::nbytes() const {
  return int64_t(codes_.size() + absmax_q_.size() + factor_.size() * sizeof(float) + sizeof(float));
}

Tensor Nf4Weight::linear(const Tensor& x) const {
  FORGE_CHECK(x.size(-1) == in_, "nf4 linear: input has ", x.size(-1), " features, the weight ", in_);
  const DType dt = x.dtype() == DType::BF16 ? DType::BF16 : DType::F32;
  Tensor y;
  {
    NoGradGuard ng;
    y = forge::linear(x, dequantize(dt).to(x.device()));
  }
  if (needs_grad({x})) {
    const Device dev = x.device();
    record("nf4_linear", {x}, y, [self = shared_from_this(), dt, dev](const std::vector<Tensor>& g, const std::vector<bool>&) {
      // g W as linear(g, (W^T)): the GEMM path every Linear takes ([..., out] -> [..., in]).
      return std::vector<Tensor>{forge::linear(g[0], self->dequantize(dt).to(dev).transpose(0, 1))};
    });
  }
  return y;
}

std::pair<int64_t, int64_t> quantize_nf4(nn::Module& model) {
  int64_t before = 0, after = 0;
  for (auto& [name, m] : model.named_modules()) {
    auto lin = std::dynamic_pointer_cast<nn::Linear>(m);
    if (!lin || !lin->weight.defined() || name == "lm_head" || name.ends_with(".lm_head")) continue;
    before += lin->weight.nbytes();
    auto q = std::make_shared<Nf4Weight>(lin->weight);
    after += q->nbytes();
    lin->quantize(q);
  }
  FORGE_CHECK(after > 0, "qlora: the model has no Linear layer to quantise");
  return {before, after};
}

}  // namespace forge::peft
