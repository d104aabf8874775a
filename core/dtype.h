// Element types of a tensor and how to dispatch on them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <stdexcept>
#include <string>

#include "kernels/types.h"

namespace forge {

size_t dtype_size(DType t);
const char* dtype_name(DType t);
DType dtype_from_name(const std::string& name);  // "f32"/"float32", "bf16"/"bfloat16", ...
inline bool is_floating(DType t) { return t == DType::F32 || t == DType::BF16 || t == DType::F16; }
// The type two operands are computed in (PyTorch-like promotion, no f64).
DType promote(DType a, DType b);

template <typename T>
struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::F32; };
template <> struct dtype_of<bf16> { static constexpr DType value = DType::BF16; };
template <> struct dtype_of<f16> { static constexpr DType value = DType::F16; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::I32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::I64; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::U8; };

}  // namespace forge
