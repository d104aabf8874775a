// QLoRA's 4-bit NormalFloat weights (Dettmers et al. 2023), as bitsandbytes and torchao store them:
// blocks of 64 weights scaled by their absmax, each weight the nearest of 16 levels placed at
// quantiles of a normal distribution, two per byte; the absmax values themselves double-quantised
// to int8 (minus their mean, blocks of 256). About 4.13 bits a weight instead of 16 or 32.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/nn.h"

namespace forge::peft {

class Nf4Weight : public nn::QuantizedWeight, public std::enable_shared_from_this<Nf4Weight> {
 public:
  static constexpr int64_t kBlock = 64, kScalerBlock = 256;
  // w [out, in], any float dtype, on the CPU (quantised there, from the weight's own memory: no
  // full f32 copy); the parts are then kept on `device`, where dequantize() runs. A size that is
  // not a multiple of the blocks ends in a shorter last block.
  explicit Nf4Weight(const Tensor& w, Device device = Device::cpu());
  // x W'^T with W' the dequantised weight, made afresh in each forward and backward so that no
  // full weight outlives the call; the gradient flows to x only.
  Tensor linear(const Tensor& x) const override;
  Tensor dequantize(DType dtype) const override;
  int64_t nbytes() const override;
  // The level index (0-15) of weight i, and the dequantised absmax of block b (for tests; each
  // call copies from the device).
  int code(int64_t i) const;
  float absmax(int64_t b) const;

 private:
  int64_t out_, in_;
  Tensor codes_;     // u8 [ceil(n / 2)]: two levels a byte, the even index in the high nibble
  Tensor absmax_q_;  // u8 bits of int8 [blocks]: round((absmax - mean) * factor)
  Tensor factor_;    // f32 [blocks / 256]: 256 / (2 * max |absmax - mean|)
  float mean_ = 0;
};

// Replaces the weight of every Linear of `model` but the output layer (lm_head, as bitsandbytes
// skips it) by its NF4 form kept on `device`; returns how many bytes the weights took before and
// take now.
std::pair<int64_t, int64_t> quantize_nf4(nn::Module& model, Device device = Device::cpu());

}  // namespace forge::peft
