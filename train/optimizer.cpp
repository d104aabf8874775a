// Optimiser steps, master weights, state for checkpoints, gradient clipping.
#include "train/optimizer.h"

#include <cmath>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"

namespace forge::train {

Optimizer::Optimizer(NamedParams params) : params_(std::move(params)) {}

Tensor& Optimizer::slot(const std::string& kind, size_t i) {
  Tensor& s = state_[kind + "/" + params_[i].first];
  if (!s.defined()) s = Tensor::zeros(params_[i].second.shape(), DType::F32, params_[i].second.device());
  return s;
}

void Optimizer::step() {
  NoGradGuard ng;
  ++t_;
  std::vector<Item> items;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = params_[i].second;
    if (!p.grad().defined()) continue;
    if (p.dtype() == DType::F32) {
      items.push_back({i, p, p.grad().contiguous(), Tensor()});
    } else {
      Tensor& master = state_["master/" + params_[i].first];
      if (!master.defined()) master = p.to(DType::F32).clone();
      items.push_back({i, master, p.grad().contiguous(), p});
    }
  }
  update_all(items);
}

void Optimizer::update_all(const std::vector<Item>& items) {
  for (const Item& it : items) {
    Tensor p32 = it.p32;
    update(it.i, p32, it.grad.to(DType::F32));
    if (it.lowp.defined()) it.lowp.copy_(it.p32);
  }
}

void Optimizer::zero_grad() {
  for (auto& [n, p] : params_) p.set_grad(Tensor());
}

std::map<std::string, Tensor> Optimizer::state_dict() const {
  std::map<std::string, Tensor> sd = state_;
  sd["step"] = Tensor::from_vector(std::vector<int64_t>{t_}, {1});
  return sd;
}

void Optimizer::load_state_dict(const std::map<std::string, Tensor>& sd) {
  auto it = sd.find("step");
  FORGE_CHECK(it != sd.end(), "optimiser state has no 'step'");
  t_ = int64_t(it->second.item());
  state_.clear();
  for (auto& [k, v] : sd) {
    if (k == "step") continue;
    const std::string name = k.substr(k.find('/') + 1);
    bool known = false;
    for (auto& [n, p] : params_)
      if (n == name) {
        FORGE_CHECK(v.shape() == p.shape(), "optimiser state '", k, "' has shape ", shape_str(v.shape()),
                    " but the parameter is ", shape_str(p.shape()));
        known = true;
      }
    FORGE_CHECK(known, "optimiser state '", k, "' belongs to no trainable parameter");
    state_[k] = v.to(DType::F32).to(params_[0].second.device()).clone();
  }
}

AdamW::AdamW(NamedParams params, AdamWOptions o) : Optimizer(std::move(params)), opt(o) { lr = o.lr; }

namespace {
NamedParams numbered(const std::vector<Tensor>& params) {
  NamedParams named;
  for (size_t i = 0; i < params.size(); ++i) named.emplace_back(std::to_string(i), params[i]);
  return named;
}
}  // namespace

AdamW::AdamW(std::vector<Tensor> params, AdamWOptions o) : AdamW(numbered(params), o) {}

void AdamW::update_all(const std::vector<Item>& items) {
  std::vector<AdamWParam> ps;
  for (const Item& it : items) {
    // A parameter made contiguous by its master's rounding: the bf16 view must be the parameter.
    FORGE_CHECK(!it.lowp.defined() || it.lowp.is_contiguous(), "AdamW: parameter ", params()[it.i].first,
                " is not contiguous");
    ps.push_back({it.p32, it.grad, slot("exp_avg", it.i), slot("exp_avg_sq", it.i), it.lowp});
  }
  adamw_step_(ps, lr, opt.beta1, opt.beta2, opt.eps, opt.weight_decay, t_);
}

SGD::SGD(NamedParams params, SGDOptions o) : Optimizer(std::move(params)), opt(o) { lr = o.lr; }

void SGD::update(size_t i, Tensor& p, const Tensor& g0) {
  Tensor g = g0;
  if (opt.weight_decay != 0.0) g = add(g, mul(p, opt.weight_decay));  // coupled, as torch.optim.SGD
  if (opt.momentum != 0.0) {
    Tensor& buf = slot("momentum", i);  // starts at zero, so the first step stores g as torch does
    mul_(buf, opt.momentum);
    add_(buf, g);
    g = buf;
  }
  add_(p, g, -lr);
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm, const std::vector<double>& weights,
                      parallel::Communicator* group) {
  NoGradGuard ng;
  // Every gradient's sum of squares in one fused call on its device, read back in one copy and
  // added in double on the host.
  std::vector<Tensor> grads;
  std::vector<double> w;
  for (size_t i = 0; i < params.size(); ++i)
    if (params[i].grad().defined()) {
      grads.push_back(params[i].grad().contiguous());
      w.push_back(weights.empty() ? 1.0 : weights[i]);
    }
  double total = 0;
  if (!grads.empty()) {
    const std::vector<float> s = sum_squares(grads).to_float_vector();
    for (size_t i = 0; i < s.size(); ++i) total += w[i] * double(s[i]);
  }
  if (group && group->size() > 1) total = group->sum({total})[0];
  const double norm = std::sqrt(total);
  if (max_norm > 0 && norm > max_norm) {
    const double s = max_norm / (norm + 1e-6);
    for (const Tensor& p : params)
      if (p.grad().defined()) {
        Tensor g = p.grad();
        mul_(g, s);
      }
  }
  return norm;
}

}  // namespace forge::train
