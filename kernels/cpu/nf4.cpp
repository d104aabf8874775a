// NF4 dequantisation on the CPU: a block of 64 weights at a time, 16 levels looked up per AVX-512
// permute where the CPU has it.
#include "kernels/cpu/nf4.h"

#include <algorithm>
#include <stdexcept>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace forge::cpu {
namespace {
inline int code_at(const uint8_t* codes, int64_t i) { return (codes[i / 2] >> (i % 2 ? 0 : 4)) & 15; }

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

void nf4_dequantize(const uint8_t* codes, const int8_t* absmax_q, const float* factor, float mean, int64_t n,
                    DType dt, void* out) {
  if (dt != DType::F32 && dt != DType::BF16) throw std::runtime_error("nf4: dequantises to f32 or bf16");
  float* f = dt == DType::F32 ? static_cast<float*>(out) : nullptr;
  bf16* h = dt == DType::BF16 ? static_cast<bf16*>(out) : nullptr;
  const int64_t nb = (n + kNf4Block - 1) / kNf4Block;
#pragma omp parallel for if (n >= 65536)
  for (int64_t b = 0; b < nb; ++b) {
    const float a = float(absmax_q[b]) / factor[b / kNf4ScalerBlock] + mean;
    const int64_t lo = b * kNf4Block, hi = std::min(n, lo + kNf4Block);
    int64_t i = lo;
#if defined(__AVX512F__)
    const __m512 levels = _mm512_loadu_ps(kNf4Levels), scale = _mm512_set1_ps(a);
    for (; i + 16 <= hi; i += 16) {
      const __m512 x = dequant16(codes + i / 2, levels, scale);
      if (f) _mm512_storeu_ps(f + i, x);
      else _mm256_storeu_si256(reinterpret_cast<__m256i*>(h + i), to_bf16x16(x));
    }
#endif
    for (; i < hi; ++i) {
      const float x = kNf4Levels[code_at(codes, i)] * a;
      if (f) f[i] = x;
      else h[i] = to_bf16(x);
    }
  }
}

}  // namespace forge::cpu
