// NF4 dequantisation (QLoRA's frozen base weights; peft/nf4.h holds the format and quantises).
// Weight i is level[code(i)] * absmax(i / 64): codes two a byte (the even index in the high
// nibble), absmax(b) = absmax_q[b] / factor[b / 256] + mean (the double-quantised block scale).
#pragma once
#include <cstdint>

#include "kernels/types.h"

// The 16 NormalFloat4 levels of the QLoRA paper (bitsandbytes' table), for host and device tables.
#define FORGE_NF4_LEVELS                                                                                     \
  {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,        \
   -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f,         \
   0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,                 \
   0.7229568362236023f, 1.0f}

namespace forge::cpu {

constexpr int64_t kNf4Block = 64, kNf4ScalerBlock = 256;
constexpr float kNf4Levels[16] = FORGE_NF4_LEVELS;

// out [n] in dt (f32 or bf16).
void nf4_dequantize(const uint8_t* codes, const int8_t* absmax_q, const float* factor, float mean, int64_t n,
                    DType dt, void* out);

}  // namespace forge::cpu
