// Row softmax / log-softmax and fused cross-entropy (f32 accumulation, any float storage).
#pragma once
#include <cstdint>

#include "kernels/types.h"

namespace forge::cpu {

// y[n, :] = softmax(x[n, :]) (or log_softmax); x, y [N, V] contiguous, same dtype.
void softmax_rows(DType dt, const void* x, void* y, int64_t N, int64_t V, bool log);

// loss[n] = logsumexp(logits[n]) - logits[n, target[n]]; 0 where target == ignore.
// lse[n] saved for backward. Returns the index of the first out-of-range target, or -1.
int64_t cross_entropy_fwd(DType dt, const void* logits, const int64_t* target, int64_t N, int64_t V,
                          int64_t ignore, float* loss, float* lse);

// dlogits[n, :] = (softmax(logits[n]) - onehot(target[n])) * scale[n]; 0 rows where ignored.
void cross_entropy_bwd(DType dt, const void* logits, const int64_t* target, const float* lse, const float* scale,
                       int64_t N, int64_t V, int64_t ignore, void* dlogits);

}  // namespace forge::cpu
