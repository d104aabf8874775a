// Fused optimiser steps over many tensors (kernels/*/optim), grouped by device and dtypes.
#include <cmath>
#include <map>
#include <tuple>

#include "core/ops.h"
#include "core/ops/common.h"
#include "kernels/cpu/optim.h"
#include "kernels/cuda/cuda_backend.h"

namespace forge {

void adamw_step_(const std::vector<AdamWParam>& ps, double lr, double beta1, double beta2, double eps,
                 double weight_decay, int64_t step, double grad_scale, const Tensor& scale) {
  FORGE_CHECK(!scale.defined() || (scale.dtype() == DType::F32 && scale.numel() == 1 && scale.is_contiguous()),
              "adamw_step_: scale must be one contiguous f32 value");
  const cpu::AdamWHyper h{float(lr), float(beta1), float(beta2), float(eps), float(weight_decay),
                          float(1.0 - std::pow(beta1, double(step))), float(1.0 - std::pow(beta2, double(step))),
                          float(grad_scale), scale.defined() ? scale.data<float>() : nullptr};
  // One kernel call per (device, gradient dtype, low-precision dtype).
  std::map<std::tuple<std::string, DType, DType>, std::vector<cpu::AdamWTensor>> groups;
  std::map<std::tuple<std::string, DType, DType>, Device> devices;
  for (const AdamWParam& p : ps) {
    const int64_t n = p.p32.numel();
    FORGE_CHECK(p.p32.dtype() == DType::F32 && p.exp_avg.dtype() == DType::F32 && p.exp_avg_sq.dtype() == DType::F32,
                "adamw_step_: weights and moments must be f32");
    FORGE_CHECK(p.p32.is_contiguous() && p.grad.is_contiguous() && p.exp_avg.is_contiguous() &&
                    p.exp_avg_sq.is_contiguous() && (!p.lowp.defined() || p.lowp.is_contiguous()),
                "adamw_step_: tensors must be contiguous");
    FORGE_CHECK(p.grad.numel() == n && p.exp_avg.numel() == n && p.exp_avg_sq.numel() == n &&
                    (!p.lowp.defined() || p.lowp.numel() == n),
                "adamw_step_: a parameter's tensors differ in size");
    for (const Tensor* t : {&p.grad, &p.exp_avg, &p.exp_avg_sq})
      detail::check_same_device(p.p32, *t, "adamw_step_");
    if (p.lowp.defined()) detail::check_same_device(p.p32, p.lowp, "adamw_step_");
    if (scale.defined()) detail::check_same_device(p.p32, scale, "adamw_step_");
    const DType lowp_dt = p.lowp.defined() ? p.lowp.dtype() : DType::F32;
    const auto key = std::make_tuple(p.p32.device().str(), p.grad.dtype(), lowp_dt);
    groups[key].push_back({p.p32.data<float>(), p.grad.raw_data(), p.exp_avg.data<float>(), p.exp_avg_sq.data<float>(),
                           p.lowp.defined() ? p.lowp.raw_data() : nullptr, n});
    devices.emplace(key, p.p32.device());
  }
  for (auto& [key, list] : groups)
    detail::run_kernel(devices.at(key), cpu::adamw_multi, cuda::adamw_multi, h, std::get<1>(key), std::get<2>(key),
                       static_cast<const cpu::AdamWTensor*>(list.data()), int64_t(list.size()));
}

Tensor sum_squares(const std::vector<Tensor>& xs) {
  const Device dev = xs.empty() ? Device::cpu() : xs[0].device();
  Tensor out = Tensor::empty({int64_t(xs.size())}, DType::F32, dev);
  // Runs of tensors of one dtype, each one kernel call into its part of out.
  for (size_t first = 0; first < xs.size();) {
    std::vector<cpu::SquaresTensor> run;
    const DType dt = xs[first].dtype();
    size_t i = first;
    for (; i < xs.size() && xs[i].dtype() == dt; ++i) {
      detail::check_same_device(xs[first], xs[i], "sum_squares");
      FORGE_CHECK(xs[i].is_contiguous(), "sum_squares: tensors must be contiguous");
      run.push_back({xs[i].raw_data(), xs[i].numel()});
    }
    detail::run_kernel(dev, cpu::sum_squares_multi, cuda::sum_squares_multi, dt,
                       static_cast<const cpu::SquaresTensor*>(run.data()), int64_t(run.size()),
                       out.data<float>() + first);
    first = i;
  }
  return out;
}

}  // namespace forge
