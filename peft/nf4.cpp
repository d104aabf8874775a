#include "peft/nf4.h"

#include <algorithm>
#include <array>
#include <cmath>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

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

#if defined(__AVX512F__)
// 16 weights from 8 code bytes: the even weight's level in each byte's high nibble.
inline __m512 dequant16(const uint8_t* p, __m512 levels, __m512 scale) {
  const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  const __m128i mask = _mm_set1_epi8(0x0f);
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), mask), lo = _mm_and_si128(b, mask);
  const __m512i idx = _mm512_cvtepu8_epi32(_mm_unpacklo_epi8(hi, lo));
  return _mm512_mul_ps(_mm512_permutexvar_ps(idx, levels), scale);
}

// Round to nearest even, as to_bf16 (the values are finite).
inline __m256i to_bf16x16(__m512 v) {
  const __m512i u = _mm512_castps_si512(v);
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7fff)));
  return _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16));
}
#endif

}  // namespace

Nf4Weight::Nf4Weight(const Tensor& w) {
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
  codes_.assign(size_t((n + 1) / 2), 0);
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
      codes_[size_t((lo + i) / 2)] |= uint8_t(i % 2 ? code : code << 4);  // a block of 64 never splits a byte
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
    int64_t i = lo;
#if defined(__AVX512F__)
    const __m512 levels = _mm512_loadu_ps(kLevels), scale = _mm512_set1_ps(a);
    for (; i + 16 <= hi; i += 16) {
      const __m512 x = dequant16(codes_.data() + i / 2, levels, scale);
      if (f) _mm512_storeu_ps(f + i, x);
      else _mm256_storeu_si256(reinterpret_cast<__m256i*>(h + i), to_bf16x16(x));
    }
#endif
    for (; i < hi; ++i) {
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
