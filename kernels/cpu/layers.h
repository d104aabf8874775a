// CPU kernels for embedding, RMSNorm and rotary embedding (f32 math on any float storage).
#pragma once
#include <cstdint>

#include "kernels/types.h"

namespace forge::cpu {

// out[n, :] = weight[ids[n], :]; weight [V, C] with element strides (s_row, s_col), out [N, C].
void embedding_fwd(DType dt, const void* weight, int64_t s_row, int64_t s_col, const int64_t* ids, int64_t N,
                   int64_t C, void* out);
// gw[ids[n], :] += g[n, :]; g [N, C] in dt, gw [V, C] f32 (zeroed by the caller).
void embedding_bwd(DType dt, const void* g, const int64_t* ids, int64_t N, int64_t C, float* gw);

// y = (x * rstd) * w with rstd[n] = 1/sqrt(mean(x[n]^2) + eps); x, y [N, C] in dt, w [C] in dt.
// As HF's LlamaRMSNorm: the normalised x is rounded to dt before the weight multiply. unit_offset:
// y = (x * rstd) * (1 + w) in f32, rounded once (GemmaRMSNorm).
void rms_norm_fwd(DType dt, const void* x, const void* w, int64_t N, int64_t C, float eps, bool unit_offset, void* y,
                  float* rstd);
// dx [N, C] in dt; dw [C] f32 (written, not accumulated).
void rms_norm_bwd(DType dt, const void* x, const void* w, const float* rstd, const void* g, int64_t N, int64_t C,
                  bool unit_offset, void* dx, float* dw);

// Rotary embedding, rotate_half convention, over the first R of D dims (partial rotary: the rest
// pass through). x [B, H, T, D] with element strides (sb, sh, st, 1); y [B, H, T, D] contiguous;
// pos [B, T] with batch stride pos_sb (0: shared by the batch); inv_freq [R/2]. sign = +1 applies
// the rotation, -1 its inverse (the backward).
// mscale multiplies the rotated dims (yarn / longrope's attention factor on cos and sin).
void rope(DType dt, const void* x, int64_t B, int64_t H, int64_t T, int64_t D, int64_t R, int64_t sb, int64_t sh,
          int64_t st, const int64_t* pos, int64_t pos_sb, const float* inv_freq, float sign, float mscale, void* y);

}  // namespace forge::cpu
