// CUDA elementwise kernels over strided operands: one thread per output element, the same
// scalar functors as the CPU (kernels/elementwise_ops.h), f32 math on any float storage.
#include <type_traits>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/gpu.h"

namespace forge::cuda::gpu {
namespace {
constexpr int kMaxDims = 12;

// Shape and per-operand element strides, passed by value to the kernel.
template <int N>
struct Indexer {
  int nd;
  int64_t shape[kMaxDims];
  int64_t st[N][kMaxDims];
  __device__ void offsets(int64_t i, int64_t* off) const {
    for (int k = 0; k < N; ++k) off[k] = 0;
    for (int d = nd - 1; d >= 0; --d) {
      int64_t idx = i % shape[d];
      i /= shape[d];
      for (int k = 0; k < N; ++k) off[k] += idx * st[k][d];
    }
  }
};

template <int N>
Indexer<N> make_indexer(int nd, const int64_t* shape, const int64_t* const* strides, int64_t& numel) {
  if (nd > kMaxDims) throw std::runtime_error("CUDA elementwise: too many dims");
  Indexer<N> ix{};
  ix.nd = nd;
  numel = 1;
  for (int d = 0; d < nd; ++d) {
    ix.shape[d] = shape[d];
    numel *= shape[d];
    for (int k = 0; k < N; ++k) ix.st[k][d] = strides[k][d];
  }
  return ix;
}

template <typename T>
constexpr bool is_float_v = std::is_same_v<T, float> || std::is_same_v<T, bf16> || std::is_same_v<T, f16>;
template <typename T>
using compute_t = std::conditional_t<is_float_v<T>, float, int64_t>;

template <typename C, typename T>
__device__ __forceinline__ C ld(const T* p) {
  if constexpr (is_float_v<T>) return C(load_f32(p));
  else return C(*p);
}
template <typename T, typename C>
__device__ __forceinline__ void st(T* p, C v) {
  if constexpr (is_float_v<T>) store_f32(p, float(v));
  else *p = T(v);
}

int blocks_for(int64_t n) { return int((n + 255) / 256); }

template <UnaryOp OP, typename T>
__global__ void unary_k(Indexer<2> ix, int64_t n, T* out, const T* x, float s) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  int64_t off[2];
  ix.offsets(i, off);
  store_f32(out + off[0], unary_fn<OP>(load_f32(x + off[1]), s));
}

template <BinaryOp OP, typename TO, typename T>
__global__ void binary_k(Indexer<3> ix, int64_t n, TO* out, const T* a, const T* b) {
  using C = compute_t<T>;
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  int64_t off[3];
  ix.offsets(i, off);
  st(out + off[0], binary_fn<OP, C>(ld<C>(a + off[1]), ld<C>(b + off[2])));
}

template <typename TO, typename TI>
__global__ void cast_k(Indexer<2> ix, int64_t n, TO* out, const TI* x) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  int64_t off[2];
  ix.offsets(i, off);
  if constexpr (is_float_v<TO> && is_float_v<TI>) store_f32(out + off[0], load_f32(x + off[1]));
  else if constexpr (is_float_v<TO>) store_f32(out + off[0], float(x[off[1]]));
  else if constexpr (is_float_v<TI>) out[off[0]] = TO(load_f32(x + off[1]));
  else out[off[0]] = TO(x[off[1]]);
}

template <typename T>
__global__ void where_k(Indexer<4> ix, int64_t n, T* out, const uint8_t* c, const T* a, const T* b) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  int64_t off[4];
  ix.offsets(i, off);
  out[off[0]] = c[off[1]] ? a[off[2]] : b[off[3]];
}

template <typename T>
__global__ void fill_k(Indexer<1> ix, int64_t n, T* out, T v) {
  int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  int64_t off[1];
  ix.offsets(i, off);
  out[off[0]] = v;
}


void check_launch() { FORGE_CUDA_CHECK(cudaGetLastError()); }
}  // namespace

void unary(UnaryOp op, DType dt, int nd, const int64_t* shape, void* out, const int64_t* so, const void* x,
           const int64_t* sx, float s, int device) {
  const int64_t* strides[2] = {so, sx};
  int64_t n;
  Indexer<2> ix = make_indexer<2>(nd, shape, strides, n);
  if (n == 0) return;
  cudaStream_t stream = stream_for(device);
  dispatch_all(dt, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (is_float_v<T>) {
      T* o = static_cast<T*>(out);
      const T* a = static_cast<const T*>(x);
#define FORGE_U(NAME) \
  case UnaryOp::NAME: unary_k<UnaryOp::NAME, T><<<blocks_for(n), 256, 0, stream>>>(ix, n, o, a, s); break;
      switch (op) {
        FORGE_U(Neg) FORGE_U(Exp) FORGE_U(Log) FORGE_U(Sqrt) FORGE_U(Rsqrt) FORGE_U(Sigmoid) FORGE_U(Silu)
        FORGE_U(Gelu) FORGE_U(GeluTanh) FORGE_U(Tanh) FORGE_U(Abs) FORGE_U(Square) FORGE_U(LogSigmoid) FORGE_U(AddScalar)
        FORGE_U(MulScalar) FORGE_U(PowScalar) FORGE_U(RSubScalar) FORGE_U(RDivScalar) FORGE_U(Copy)
      }
#undef FORGE_U
    } else {
      throw std::runtime_error("unary math needs a floating tensor");
    }
  });
  check_launch();
}

void binary(BinaryOp op, DType dt, int nd, const int64_t* shape, void* out, const int64_t* so, const void* a,
            const int64_t* sa, const void* b, const int64_t* sb, int device) {
  const int64_t* strides[3] = {so, sa, sb};
  int64_t n;
  Indexer<3> ix = make_indexer<3>(nd, shape, strides, n);
  if (n == 0) return;
  cudaStream_t stream = stream_for(device);
  dispatch_all(dt, [&](auto tag) {
    using T = decltype(tag);
    const T* x = static_cast<const T*>(a);
    const T* y = static_cast<const T*>(b);
    T* o = static_cast<T*>(out);
    uint8_t* o8 = static_cast<uint8_t*>(out);
    int g = blocks_for(n);
#define FORGE_B(NAME) \
  case BinaryOp::NAME: binary_k<BinaryOp::NAME, T, T><<<g, 256, 0, stream>>>(ix, n, o, x, y); return;
#define FORGE_C(NAME) \
  case BinaryOp::NAME: binary_k<BinaryOp::NAME, uint8_t, T><<<g, 256, 0, stream>>>(ix, n, o8, x, y); return;
    switch (op) {
      FORGE_B(Add) FORGE_B(Sub) FORGE_B(Mul) FORGE_B(Maximum) FORGE_B(Minimum)
      FORGE_C(Eq) FORGE_C(Ne) FORGE_C(Lt) FORGE_C(Le) FORGE_C(Gt) FORGE_C(Ge)
      default: break;
    }
    if constexpr (is_float_v<T>) {
      switch (op) {
        FORGE_B(Div) FORGE_B(Pow) FORGE_B(SiluGrad) FORGE_B(GeluGrad) FORGE_B(GeluTanhGrad) FORGE_B(SigmoidGrad)
        FORGE_B(TanhGrad) FORGE_B(LogSigmoidGrad)
        default: break;
      }
    }
#undef FORGE_B
#undef FORGE_C
    throw std::runtime_error("binary op not defined for integer tensors");
  });
  check_launch();
}

void copy_cast(DType to, DType from, int nd, const int64_t* shape, void* out, const int64_t* so, const void* x,
               const int64_t* sx, int device) {
  const int64_t* strides[2] = {so, sx};
  int64_t n;
  Indexer<2> ix = make_indexer<2>(nd, shape, strides, n);
  if (n == 0) return;
  cudaStream_t stream = stream_for(device);
  dispatch_all(to, [&](auto to_tag) {
    using TO = decltype(to_tag);
    dispatch_all(from, [&](auto from_tag) {
      using TI = decltype(from_tag);
      cast_k<TO, TI><<<blocks_for(n), 256, 0, stream>>>(ix, n, static_cast<TO*>(out), static_cast<const TI*>(x));
    });
  });
  check_launch();
}

void where(DType dt, int nd, const int64_t* shape, void* out, const int64_t* so, const uint8_t* cond,
           const int64_t* sc, const void* a, const int64_t* sa, const void* b, const int64_t* sb, int device) {
  const int64_t* strides[4] = {so, sc, sa, sb};
  int64_t n;
  Indexer<4> ix = make_indexer<4>(nd, shape, strides, n);
  if (n == 0) return;
  cudaStream_t stream = stream_for(device);
  dispatch_all(dt, [&](auto tag) {
    using T = decltype(tag);
    where_k<T><<<blocks_for(n), 256, 0, stream>>>(ix, n, static_cast<T*>(out), cond, static_cast<const T*>(a),
                                                  static_cast<const T*>(b));
  });
  check_launch();
}

void fill(DType dt, int nd, const int64_t* shape, void* out, const int64_t* so, double value, int device) {
  const int64_t* strides[1] = {so};
  int64_t n;
  Indexer<1> ix = make_indexer<1>(nd, shape, strides, n);
  if (n == 0) return;
  cudaStream_t stream = stream_for(device);
  dispatch_all(dt, [&](auto tag) {
    using T = decltype(tag);
    T v;
    if constexpr (is_float_v<T>) store_f32(&v, float(value));
    else v = T(value);
    fill_k<T><<<blocks_for(n), 256, 0, stream>>>(ix, n, static_cast<T*>(out), v);
  });
  check_launch();
}

}  // namespace forge::cuda::gpu
