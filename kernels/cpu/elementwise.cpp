// CPU elementwise kernels: template instantiation per (op, dtype) so inner loops vectorise.
#include "kernels/cpu/elementwise.h"

#include <stdexcept>
#include <string>
#include <type_traits>

#include "kernels/cpu/loops.h"

namespace forge::cpu {
namespace {

template <typename T>
constexpr bool is_float_v = std::is_same_v<T, float> || std::is_same_v<T, bf16> || std::is_same_v<T, f16>;

// Compute type of a storage type: f32 for floating types, int64 for integers.
template <typename T>
using compute_t = std::conditional_t<is_float_v<T>, float, int64_t>;

template <typename C, typename T>
inline C load(const T* p) {
  if constexpr (is_float_v<T>) return C(load_f32(p));
  else return C(*p);
}
template <typename T, typename C>
inline void store(T* p, C v) {
  if constexpr (is_float_v<T>) store_f32(p, float(v));
  else *p = T(v);
}


template <UnaryOp OP, typename T>
void unary_t(int ndim, const int64_t* shape, T* out, const int64_t* so, const T* x, const int64_t* sx,
             float s) {
  strided_loop<2>(ndim, shape, {so, sx}, [&](const int64_t* off, const int64_t* inc, int64_t n) {
    T* o = out + off[0];
    const T* a = x + off[1];
    if (inc[0] == 1 && inc[1] == 1) {
      for (int64_t i = 0; i < n; ++i) store_f32(o + i, unary_fn<OP>(load_f32(a + i), s));
    } else {
      for (int64_t i = 0; i < n; ++i) store_f32(o + i * inc[0], unary_fn<OP>(load_f32(a + i * inc[1]), s));
    }
  });
}

template <BinaryOp OP, typename TO, typename T>
void binary_t(int ndim, const int64_t* shape, TO* out, const int64_t* so, const T* a, const int64_t* sa,
              const T* b, const int64_t* sb) {
  using C = compute_t<T>;
  strided_loop<3>(ndim, shape, {so, sa, sb}, [&](const int64_t* off, const int64_t* inc, int64_t n) {
    TO* o = out + off[0];
    const T* x = a + off[1];
    const T* y = b + off[2];
    auto f = [](C u, C v) { return binary_fn<OP, C>(u, v); };
    if (inc[0] == 1 && inc[1] == 1 && inc[2] == 1) {
      for (int64_t i = 0; i < n; ++i) store(o + i, f(load<C>(x + i), load<C>(y + i)));
    } else if (inc[0] == 1 && inc[1] == 1 && inc[2] == 0) {
      const C yv = load<C>(y);
      for (int64_t i = 0; i < n; ++i) store(o + i, f(load<C>(x + i), yv));
    } else if (inc[0] == 1 && inc[1] == 0 && inc[2] == 1) {
      const C xv = load<C>(x);
      for (int64_t i = 0; i < n; ++i) store(o + i, f(xv, load<C>(y + i)));
    } else {
      for (int64_t i = 0; i < n; ++i)
        store(o + i * inc[0], f(load<C>(x + i * inc[1]), load<C>(y + i * inc[2])));
    }
  });
}

template <typename T>
void unary_dispatch(UnaryOp op, int ndim, const int64_t* shape, void* out, const int64_t* so,
                    const void* x, const int64_t* sx, float s) {
  auto o = static_cast<T*>(out);
  auto a = static_cast<const T*>(x);
#define FORGE_UNARY_CASE(NAME) \
  case UnaryOp::NAME: return unary_t<UnaryOp::NAME, T>(ndim, shape, o, so, a, sx, s);
  switch (op) {
    FORGE_UNARY_CASE(Neg) FORGE_UNARY_CASE(Exp) FORGE_UNARY_CASE(Log) FORGE_UNARY_CASE(Sqrt)
    FORGE_UNARY_CASE(Rsqrt) FORGE_UNARY_CASE(Sigmoid) FORGE_UNARY_CASE(Silu) FORGE_UNARY_CASE(Gelu)
    FORGE_UNARY_CASE(GeluTanh) FORGE_UNARY_CASE(Tanh) FORGE_UNARY_CASE(Abs) FORGE_UNARY_CASE(Square) FORGE_UNARY_CASE(LogSigmoid)
    FORGE_UNARY_CASE(AddScalar) FORGE_UNARY_CASE(MulScalar) FORGE_UNARY_CASE(PowScalar)
    FORGE_UNARY_CASE(RSubScalar) FORGE_UNARY_CASE(RDivScalar) FORGE_UNARY_CASE(Copy)
  }
#undef FORGE_UNARY_CASE
}

template <typename T>
void binary_dispatch(BinaryOp op, int ndim, const int64_t* shape, void* out, const int64_t* so,
                     const void* a, const int64_t* sa, const void* b, const int64_t* sb) {
  auto x = static_cast<const T*>(a);
  auto y = static_cast<const T*>(b);
#define FORGE_ARITH_CASE(NAME) \
  case BinaryOp::NAME: return binary_t<BinaryOp::NAME, T, T>(ndim, shape, static_cast<T*>(out), so, x, sa, y, sb);
#define FORGE_CMP_CASE(NAME) \
  case BinaryOp::NAME: \
    return binary_t<BinaryOp::NAME, uint8_t, T>(ndim, shape, static_cast<uint8_t*>(out), so, x, sa, y, sb);
  switch (op) {
    FORGE_ARITH_CASE(Add) FORGE_ARITH_CASE(Sub) FORGE_ARITH_CASE(Mul) FORGE_ARITH_CASE(Maximum)
    FORGE_ARITH_CASE(Minimum)
    FORGE_CMP_CASE(Eq) FORGE_CMP_CASE(Ne) FORGE_CMP_CASE(Lt) FORGE_CMP_CASE(Le) FORGE_CMP_CASE(Gt)
    FORGE_CMP_CASE(Ge)
    default: break;
  }
  if constexpr (is_float_v<T>) {
    switch (op) {
      FORGE_ARITH_CASE(Div) FORGE_ARITH_CASE(Pow) FORGE_ARITH_CASE(SiluGrad) FORGE_ARITH_CASE(GeluGrad)
      FORGE_ARITH_CASE(GeluTanhGrad) FORGE_ARITH_CASE(SigmoidGrad) FORGE_ARITH_CASE(TanhGrad) FORGE_ARITH_CASE(LogSigmoidGrad)
      default: break;
    }
  }
#undef FORGE_ARITH_CASE
#undef FORGE_CMP_CASE
  throw std::runtime_error("binary op " + std::to_string(int(op)) + " is not defined for integer tensors");
}

template <typename TO, typename TI>
inline TO convert(TI v) {
  if constexpr (std::is_same_v<TO, TI>) return v;
  else if constexpr (is_float_v<TO>) {
    TO r;
    if constexpr (is_float_v<TI>) store_f32(&r, load_f32(&v));
    else store_f32(&r, float(v));
    return r;
  } else {
    if constexpr (is_float_v<TI>) return TO(load_f32(&v));
    else return TO(v);
  }
}

}  // namespace

void unary(UnaryOp op, DType dt, int ndim, const int64_t* shape, void* out, const int64_t* so,
           const void* x, const int64_t* sx, float s) {
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    unary_dispatch<T>(op, ndim, shape, out, so, x, sx, s);
  });
}

void binary(BinaryOp op, DType dt, int ndim, const int64_t* shape, void* out, const int64_t* so,
            const void* a, const int64_t* sa, const void* b, const int64_t* sb) {
  dispatch_all(dt, [&](auto tag) {
    using T = decltype(tag);
    binary_dispatch<T>(op, ndim, shape, out, so, a, sa, b, sb);
  });
}

void copy_cast(DType to, DType from, int ndim, const int64_t* shape, void* out, const int64_t* so,
               const void* x, const int64_t* sx) {
  dispatch_all(to, [&](auto to_tag) {
    using TO = decltype(to_tag);
    dispatch_all(from, [&](auto from_tag) {
      using TI = decltype(from_tag);
      TO* o0 = static_cast<TO*>(out);
      const TI* i0 = static_cast<const TI*>(x);
      strided_loop<2>(ndim, shape, {so, sx}, [&](const int64_t* off, const int64_t* inc, int64_t n) {
        TO* o = o0 + off[0];
        const TI* a = i0 + off[1];
        if (inc[0] == 1 && inc[1] == 1) {
          for (int64_t i = 0; i < n; ++i) o[i] = convert<TO, TI>(a[i]);
        } else {
          for (int64_t i = 0; i < n; ++i) o[i * inc[0]] = convert<TO, TI>(a[i * inc[1]]);
        }
      });
    });
  });
}

void where(DType dt, int ndim, const int64_t* shape, void* out, const int64_t* so, const uint8_t* cond,
           const int64_t* sc, const void* a, const int64_t* sa, const void* b, const int64_t* sb) {
  dispatch_all(dt, [&](auto tag) {
    using T = decltype(tag);
    T* o0 = static_cast<T*>(out);
    const T* a0 = static_cast<const T*>(a);
    const T* b0 = static_cast<const T*>(b);
    strided_loop<4>(ndim, shape, {so, sc, sa, sb}, [&](const int64_t* off, const int64_t* inc, int64_t n) {
      for (int64_t i = 0; i < n; ++i)
        o0[off[0] + i * inc[0]] = cond[off[1] + i * inc[1]] ? a0[off[2] + i * inc[2]] : b0[off[3] + i * inc[3]];
    });
  });
}

void fill(DType dt, int ndim, const int64_t* shape, void* out, const int64_t* so, double value) {
  dispatch_all(dt, [&](auto tag) {
    using T = decltype(tag);
    T v;
    if constexpr (is_float_v<T>) store_f32(&v, float(value));
    else v = T(value);
    T* o0 = static_cast<T*>(out);
    strided_loop<1>(ndim, shape, {so}, [&](const int64_t* off, const int64_t* inc, int64_t n) {
      for (int64_t i = 0; i < n; ++i) o0[off[0] + i * inc[0]] = v;
    });
  });
}

}  // namespace forge::cpu
