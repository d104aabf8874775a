// CPU elementwise kernels over strided operands (element strides; stride 0 = broadcast).
// Floating math runs in f32 whatever the storage type; integers in int64.
#pragma once
#include <cstdint>

#include "kernels/elementwise_ops.h"

namespace forge::cpu {

// out[i] = op(x[i], s); out and x share the floating dtype dt.
void unary(UnaryOp op, DType dt, int ndim, const int64_t* shape, void* out, const int64_t* so,
           const void* x, const int64_t* sx, float s);

// out[i] = op(a[i], b[i]); a and b share dtype dt; out has dt, or u8 for comparisons.
void binary(BinaryOp op, DType dt, int ndim, const int64_t* shape, void* out, const int64_t* so,
            const void* a, const int64_t* sa, const void* b, const int64_t* sb);

// out[i] = convert(x[i]): strided copy with dtype conversion (also plain copies when equal).
void copy_cast(DType to, DType from, int ndim, const int64_t* shape, void* out, const int64_t* so,
               const void* x, const int64_t* sx);

// out[i] = cond[i] ? a[i] : b[i]; cond is u8, a/b/out share dtype dt.
void where(DType dt, int ndim, const int64_t* shape, void* out, const int64_t* so, const uint8_t* cond,
           const int64_t* sc, const void* a, const int64_t* sa, const void* b, const int64_t* sb);

// out[i] = value (converted to dt).
void fill(DType dt, int ndim, const int64_t* shape, void* out, const int64_t* so, double value);

}  // namespace forge::cpu
