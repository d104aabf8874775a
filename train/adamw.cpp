// AdamW update: p -= lr * (m_hat / (sqrt(v_hat) + eps) + wd * p), moments in f32.
#include "train/adamw.h"

#include <cmath>

#include "core/autograd.h"
#include "core/ops.h"

namespace forge::train {

AdamW::AdamW(std::vector<Tensor> params, AdamWOptions opt) : params_(std::move(params)), opt_(opt) {
  for (const Tensor& p : params_) {
    m_.push_back(Tensor::zeros(p.shape(), DType::F32, p.device()));
    v_.push_back(Tensor::zeros(p.shape(), DType::F32, p.device()));
  }
}

void AdamW::step() {
  NoGradGuard ng;
  ++t_;
  const double c1 = 1.0 - std::pow(opt_.beta1, double(t_)), c2 = 1.0 - std::pow(opt_.beta2, double(t_));
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i];
    if (!p.grad().defined()) continue;
    Tensor g = p.grad().to(DType::F32);
    mul_(m_[i], opt_.beta1);
    add_(m_[i], g, 1.0 - opt_.beta1);
    mul_(v_[i], opt_.beta2);
    add_(v_[i], square(g), 1.0 - opt_.beta2);
    Tensor update = div(mul(m_[i], 1.0 / c1), add(sqrt(mul(v_[i], 1.0 / c2)), opt_.eps));
    if (opt_.weight_decay != 0.0) mul_(p, 1.0 - opt_.lr * opt_.weight_decay);
    add_(p, update, -opt_.lr);
  }
}

void AdamW::zero_grad() {
  for (Tensor& p : params_) p.set_grad(Tensor());
}

}  // namespace forge::train
