// Row and column reductions with f32 accumulation.
#pragma once
#include <cstdint>

#include "kernels/types.h"

namespace forge::cpu {

enum class ReduceOp { Sum, Max };

// x [M, R] contiguous -> out [M]: reduce each row.
void reduce_rows(ReduceOp op, DType dt, const void* x, int64_t M, int64_t R, float* out);
// x [R, M] contiguous -> out [M]: reduce over the leading dim.
void reduce_cols(ReduceOp op, DType dt, const void* x, int64_t R, int64_t M, float* out);

}  // namespace forge::cpu
