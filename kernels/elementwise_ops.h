// Elementwise op codes and their scalar math, shared by the CPU loops and the CUDA kernels.
// Each op is a compile-time template parameter so inner loops hold no switch.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/types.h"

namespace forge {

// y = f(x, s): s is the scalar operand of the *Scalar ops, unused by the others.
enum class UnaryOp : uint8_t {
  Neg, Exp, Log, Sqrt, Rsqrt, Sigmoid, Silu, Gelu, GeluTanh, Tanh, Abs, Square, LogSigmoid,
  AddScalar, MulScalar, PowScalar, RSubScalar, RDivScalar, Copy
};

// y = f(a, b). The *Grad ops take (x, upstream gradient) and return the input gradient.
enum class BinaryOp : uint8_t {
  Add, Sub, Mul, Div, Pow, Maximum, Minimum,
  Eq, Ne, Lt, Le, Gt, Ge,
  SiluGrad, GeluGrad, GeluTanhGrad, SigmoidGrad, TanhGrad, LogSigmoidGrad
};

inline constexpr bool is_comparison(BinaryOp op) { return op >= BinaryOp::Eq && op <= BinaryOp::Ge; }

// exp(x) with ~1 ulp error in plain branch-free code, so compilers vectorise loops calling it.
FORGE_HD float exp_f32(float x) {
#if defined(__CUDA_ARCH__)
  return expf(x);
#else
  const float hi = 88.3762626647949f, lo = -87.3365447504019f;
  float xc = x < hi ? (x > lo ? x : lo) : hi;  // (nan becomes hi: no float-to-int cast of nan below)
  // nearbyint, not floor(. + 0.5): GCC 12 vectorises no floorf without -fno-trapping-math.
  float n = std::nearbyint(xc * 1.44269504088896341f);
  float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  float scale = bits_f32(uint32_t(int32_t(n) + 127) << 23);
  float y = p * scale;
  y = x < lo ? 0.0f : y;
  y = x > hi ? INFINITY : y;
  return x != x ? x : y;
#endif
}

FORGE_HD float sigmoid_f32(float x) { return 1.0f / (1.0f + exp_f32(-x)); }

constexpr float kSqrt1_2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;
constexpr float kGeluTanhK = 0.79788456080286536f;  // sqrt(2/pi)

template <UnaryOp OP>
FORGE_HD float unary_fn(float x, float s) {
  if constexpr (OP == UnaryOp::Neg) return -x;
  else if constexpr (OP == UnaryOp::Exp) return exp_f32(x);
  else if constexpr (OP == UnaryOp::Log) return logf(x);
  else if constexpr (OP == UnaryOp::Sqrt) return sqrtf(x);
  else if constexpr (OP == UnaryOp::Rsqrt) return 1.0f / sqrtf(x);
  else if constexpr (OP == UnaryOp::Sigmoid) return sigmoid_f32(x);
  else if constexpr (OP == UnaryOp::Silu) return x * sigmoid_f32(x);
  else if constexpr (OP == UnaryOp::Gelu) return 0.5f * x * (1.0f + erff(x * kSqrt1_2));
  else if constexpr (OP == UnaryOp::GeluTanh)
    return 0.5f * x * (1.0f + tanhf(kGeluTanhK * (x + 0.044715f * x * x * x)));
  else if constexpr (OP == UnaryOp::Tanh) return tanhf(x);
  else if constexpr (OP == UnaryOp::Abs) return fabsf(x);
  else if constexpr (OP == UnaryOp::Square) return x * x;
  else if constexpr (OP == UnaryOp::LogSigmoid)  // stable on both sides: never log(0) or exp overflow
    return fminf(x, 0.0f) - log1pf(exp_f32(-fabsf(x)));
  else if constexpr (OP == UnaryOp::AddScalar) return x + s;
  else if constexpr (OP == UnaryOp::MulScalar) return x * s;
  else if constexpr (OP == UnaryOp::PowScalar) return s == 2.0f ? x * x : powf(x, s);
  else if constexpr (OP == UnaryOp::RSubScalar) return s - x;
  else if constexpr (OP == UnaryOp::RDivScalar) return s / x;
  else return x;  // Copy
}

// C is the compute type: float for floating storage, int64_t for integers.
template <BinaryOp OP, typename C>
FORGE_HD C binary_fn(C a, C b) {
  if constexpr (OP == BinaryOp::Add) return a + b;
  else if constexpr (OP == BinaryOp::Sub) return a - b;
  else if constexpr (OP == BinaryOp::Mul) return a * b;
  else if constexpr (OP == BinaryOp::Div) return a / b;
  else if constexpr (OP == BinaryOp::Pow) return C(powf(float(a), float(b)));
  else if constexpr (OP == BinaryOp::Maximum) return a > b ? a : (a == a ? b : a);  // NaN wins
  else if constexpr (OP == BinaryOp::Minimum) return a < b ? a : (a == a ? b : a);
  else if constexpr (OP == BinaryOp::Eq) return C(a == b);
  else if constexpr (OP == BinaryOp::Ne) return C(a != b);
  else if constexpr (OP == BinaryOp::Lt) return C(a < b);
  else if constexpr (OP == BinaryOp::Le) return C(a <= b);
  else if constexpr (OP == BinaryOp::Gt) return C(a > b);
  else if constexpr (OP == BinaryOp::Ge) return C(a >= b);
  else if constexpr (OP == BinaryOp::SiluGrad) {
    float sg = sigmoid_f32(float(a));
    return C(float(b) * sg * (1.0f + float(a) * (1.0f - sg)));
  } else if constexpr (OP == BinaryOp::GeluGrad) {
    float x = float(a);
    float cdf = 0.5f * (1.0f + erff(x * kSqrt1_2));
    float pdf = kInvSqrt2Pi * exp_f32(-0.5f * x * x);
    return C(float(b) * (cdf + x * pdf));
  } else if constexpr (OP == BinaryOp::GeluTanhGrad) {
    float x = float(a);
    float inner = kGeluTanhK * (x + 0.044715f * x * x * x);
    float t = tanhf(inner);
    float d = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * kGeluTanhK * (1.0f + 3.0f * 0.044715f * x * x);
    return C(float(b) * d);
  } else if constexpr (OP == BinaryOp::SigmoidGrad) {
    float sg = sigmoid_f32(float(a));
    return C(float(b) * sg * (1.0f - sg));
  } else if constexpr (OP == BinaryOp::LogSigmoidGrad) {
    return C(float(b) * sigmoid_f32(-float(a)));
  } else {  // TanhGrad
    float t = tanhf(float(a));
    return C(float(b) * (1.0f - t * t));
  }
}

}  // namespace forge
