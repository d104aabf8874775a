// Element type codes, and the bf16/f16 storage types with round-to-nearest-even conversions,
// usable on host and device. Math is always done in float; bf16/f16 only hold bits.
#pragma once
#include <cstdint>
#include <cstring>
#include <stdexcept>

#if defined(__CUDACC__)
#define FORGE_HD __host__ __device__ __forceinline__
#else
#define FORGE_HD inline
#endif

namespace forge {

enum class DType : uint8_t { F32, BF16, F16, I32, I64, U8 };

FORGE_HD uint32_t f32_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}
FORGE_HD float bits_f32(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}

struct bf16 {
  uint16_t bits;
};
struct f16 {
  uint16_t bits;
};

FORGE_HD float to_f32(bf16 h) { return bits_f32(uint32_t(h.bits) << 16); }
FORGE_HD bf16 to_bf16(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{uint16_t((u >> 16) | 0x40)};  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);                                                // round to even
  return bf16{uint16_t(u >> 16)};
}

FORGE_HD float to_f32(f16 h) {
  uint32_t sign = uint32_t(h.bits & 0x8000u) << 16;
  uint32_t exp = (h.bits >> 10) & 0x1fu, man = h.bits & 0x3ffu;
  if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (man << 13));  // inf / nan
  if (exp == 0) {
    if (man == 0) return bits_f32(sign);
    // subnormal: value = man * 2^-24
    float v = float(man) * 5.9604644775390625e-08f;
    return sign ? -v : v;
  }
  return bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
}
FORGE_HD f16 to_f16(float f) {
  uint32_t u = f32_bits(f);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return f16{uint16_t(sign | 0x7e00u)};  // nan
  if (a >= 0x477ff000u) return f16{uint16_t(sign | 0x7c00u)};  // overflow -> inf (65520 rounds up)
  if (a < 0x38800000u) {                                        // below smallest normal 2^-14
    // subnormal: round(|f| * 2^24) with ties to even, done in float arithmetic exactly
    float af = bits_f32(a);
    float scaled = af * 16777216.0f;  // exact (power of two)
    uint32_t r = uint32_t(scaled);
    float frac = scaled - float(r);
    if (frac > 0.5f || (frac == 0.5f && (r & 1u))) r++;
    return f16{uint16_t(sign | r)};
  }
  uint32_t e = ((a >> 23) - 112u) << 10;
  uint32_t m = (a >> 13) & 0x3ffu;
  uint32_t h = e | m;
  uint32_t rest = a & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++;  // may carry into exponent: correct
  return f16{uint16_t(sign | h)};
}

FORGE_HD float to_f32(float f) { return f; }

// Generic load/store in float for the storage types above (and float itself).
template <typename T>
FORGE_HD float load_f32(const T* p) {
  return to_f32(*p);
}
template <typename T>
FORGE_HD void store_f32(T* p, float v);
template <>
FORGE_HD void store_f32<float>(float* p, float v) {
  *p = v;
}
template <>
FORGE_HD void store_f32<bf16>(bf16* p, float v) {
  *p = to_bf16(v);
}
template <>
FORGE_HD void store_f32<f16>(f16* p, float v) {
  *p = to_f16(v);
}

// Calls f(T{}) with the C++ storage type of a floating dtype (host code).
template <typename F>
decltype(auto) dispatch_float(DType t, F&& f) {
  switch (t) {
    case DType::F32: return f(float{});
    case DType::BF16: return f(bf16{});
    case DType::F16: return f(f16{});
    default: break;
  }
  throw std::runtime_error("expected a floating tensor (f32, bf16 or f16)");
}

// Calls f(T{}) with the C++ storage type of any dtype (host code).
template <typename F>
decltype(auto) dispatch_all(DType t, F&& f) {
  switch (t) {
    case DType::F32: return f(float{});
    case DType::BF16: return f(bf16{});
    case DType::F16: return f(f16{});
    case DType::I32: return f(int32_t{});
    case DType::I64: return f(int64_t{});
    case DType::U8: return f(uint8_t{});
  }
  throw std::runtime_error("bad dtype");
}

}  // namespace forge
