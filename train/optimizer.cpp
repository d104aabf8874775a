// Optimiser steps, master weights, state for checkpoints, gradient clipping.
#include "train/optimizer.h"

#include <cmath>
#include <map>

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

void Optimizer::step(const Tensor& grad_scale) {
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
  update_all(items, grad_scale);
}

void Optimizer::update_all(const std::vector<Item>& items, const Tensor& scale) {
  for (const Item& it : items) {
    Tensor p32 = it.p32;
    const Tensor g = it.grad.to(DType::F32);
    update(it.i, p32, scale.defined() ? mul(g, scale) : g);
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

void AdamW::update_all(const std::vector<Item>& items, const Tensor& scale) {
  std::vector<AdamWParam> ps;
  for (const Item& it : items) {
    // A parameter made contiguous by its master's rounding: the bf16 view must be the parameter.
    FORGE_CHECK(!it.lowp.defined() || it.lowp.is_contiguous(), "AdamW: parameter ", params()[it.i].first,
                " is not contiguous");
    ps.push_back({it.p32, it.grad, slot("exp_avg", it.i), slot("exp_avg_sq", it.i), it.lowp});
  }
  adamw_step_(ps, lr, opt.beta1, opt.beta2, opt.eps, opt.weight_decay, t_, 1.0, scale);
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

Tensor grad_norm_clip(const std::vector<Tensor>& grads, const std::vector<double>& weights, double max_norm,
                      Device device, const std::vector<parallel::Communicator*>& groups) {
  NoGradGuard ng;
  // One fused sum of squares per distinct weight (1, and 1/tp for split models' replicated parts).
  std::map<double, std::vector<Tensor>> by_weight;
  for (size_t i = 0; i < grads.size(); ++i) by_weight[weights.empty() ? 1.0 : weights[i]].push_back(grads[i].contiguous());
  Tensor total = Tensor::zeros({1}, DType::F32, device);
  for (auto& [w, gs] : by_weight) {
    Tensor part = sum(sum_squares(gs)).reshape({1});
    total = add(total, w == 1.0 ? part : mul(part, w));
  }
  for (parallel::Communicator* g : groups)
    if (g && g->size() > 1) g->all_reduce(total);
  const Tensor norm = sqrt(total);
  const Tensor one = Tensor::ones({1}, DType::F32, device);
  const Tensor factor =
      max_norm > 0 ? minimum(div(Tensor::full({1}, max_norm, DType::F32, device), norm + 1e-6), one) : one;
  return cat({norm, factor});
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm, const std::vector<double>& weights,
                      parallel::Communicator* group) {
  NoGradGuard ng;
  std::vector<Tensor> grads;
  std::vector<double> w;
  for (size_t i = 0; i < params.size(); ++i)
    if (params[i].grad().defined()) {
      grads.push_back(params[i].grad());
      w.push_back(weights.empty() ? 1.0 : weights[i]);
    }
  const Device dev = grads.empty() ? Device::cpu() : grads[0].device();
  const std::vector<float> nc = grad_norm_clip(grads, w, max_norm, dev, {group}).to_float_vector();
  if (nc[1] < 1.0f)
    for (Tensor g : grads) mul_(g, double(nc[1]));
  return nc[0];
}

}  // namespace forge::train
