// Quantised weights: NF4 dequantisation on the CPU or a CUDA device (kernels/*/nf4).
#include "core/ops.h"
#include "core/ops/common.h"
#include "kernels/cpu/nf4.h"
#include "kernels/cuda/cuda_backend.h"

namespace forge {

Tensor nf4_dequantize(const Tensor& codes, const Tensor& absmax_q, const Tensor& factor, float mean,
                      const Shape& shape, DType dtype) {
  const int64_t n = shape_numel(shape), blocks = (n + cpu::kNf4Block - 1) / cpu::kNf4Block;
  FORGE_CHECK(dtype == DType::F32 || dtype == DType::BF16, "nf4: dequantises to f32 or bf16, not ", dtype_name(dtype));
  FORGE_CHECK(codes.dtype() == DType::U8 && codes.numel() == (n + 1) / 2 && absmax_q.dtype() == DType::U8 &&
                  absmax_q.numel() == blocks && factor.dtype() == DType::F32 &&
                  factor.numel() == (blocks + cpu::kNf4ScalerBlock - 1) / cpu::kNf4ScalerBlock &&
                  codes.is_contiguous() && absmax_q.is_contiguous() && factor.is_contiguous(),
              "nf4: parts do not fit a weight of shape ", shape_str(shape));
  detail::check_same_device(codes, absmax_q, "nf4_dequantize");
  detail::check_same_device(codes, factor, "nf4_dequantize");
  const Device dev = codes.device();
  Tensor w = Tensor::empty(shape, dtype, dev);
  detail::run_kernel(dev, cpu::nf4_dequantize, cuda::nf4_dequantize, codes.data<uint8_t>(),
                     reinterpret_cast<const int8_t*>(absmax_q.data<uint8_t>()), factor.data<float>(), mean, n, dtype,
                     w.raw_data());
  return w;
}

}  // namespace forge
