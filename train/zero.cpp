// ZeRO-1/2 optimiser (see zero.h).
#include "train/zero.h"

#include <algorithm>
#include <cmath>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"

namespace forge::train {
namespace {
// Calls fn(param index, offset inside the param, offset inside the slice, length) for every
// piece of [lo, hi) that a parameter covers.
template <typename F>
void for_each_piece(const parallel::FlatLayout& l, const NamedParams& ps, F fn) {
  for (size_t i = 0; i < ps.size(); ++i) {
    const int64_t a = l.offsets[i], b = a + ps[i].second.numel();
    const int64_t s = std::max(a, l.lo), e = std::min(b, l.hi);
    if (s < e) fn(i, s - a, s - l.lo, e - s);
  }
}
}  // namespace

ZeroOptimizer::ZeroOptimizer(parallel::Communicator& dp, NamedParams params, const parallel::FlatLayout& layout,
                             Factory make, std::vector<double> norm_weights, parallel::Communicator* model_group)
    : dp_(dp), params_(std::move(params)), layout_(layout), norm_weights_(std::move(norm_weights)),
      model_group_(model_group) {
  NoGradGuard ng;
  // The slice lives where the parameters do, and so does the inner optimiser's state.
  const Device dev = params_.empty() ? Device::cpu() : params_[0].second.device();
  master_ = Tensor::empty({layout_.hi - layout_.lo}, DType::F32, dev);
  for_each_piece(layout_, params_, [&](size_t i, int64_t po, int64_t so, int64_t n) {
    master_.narrow(0, so, n).copy_(params_[i].second.reshape({-1}).narrow(0, po, n));
  });
  master_.requires_grad_(true);
  inner_ = make(NamedParams{{"zero_shard", master_}});
}

Tensor ZeroOptimizer::step(double lr, double max_norm, const Tensor* shard_grad) {
  NoGradGuard ng;
  Tensor g;
  if (shard_grad) {
    g = shard_grad->clone();
  } else {
    g = Tensor::zeros({master_.numel()}, DType::F32, master_.device());
    for_each_piece(layout_, params_, [&](size_t i, int64_t po, int64_t so, int64_t n) {
      const Tensor& pg = params_[i].second.grad();
      if (pg.defined()) g.narrow(0, so, n).copy_(pg.reshape({-1}).narrow(0, po, n));
    });
  }
  // The global norm: every slice's (weighted) sum of squares, summed over the dp group and then
  // over the ranks that hold the other parts of the model; the inner step applies its clip factor.
  std::vector<Tensor> pieces;
  std::vector<double> w;
  for_each_piece(layout_, params_, [&](size_t i, int64_t, int64_t so, int64_t n) {
    pieces.push_back(g.narrow(0, so, n));
    w.push_back(norm_weights_.empty() ? 1.0 : norm_weights_[i]);
  });
  const Tensor norm_clip = grad_norm_clip(pieces, w, max_norm, master_.device(), {&dp_, model_group_});
  master_.set_grad(g);
  inner_->lr = lr;
  inner_->step(norm_clip.narrow(0, 1, 1));
  if (!gather_after_step_) return norm_clip;
  // Everyone's updated slice into every parameter.
  Tensor flat = Tensor::empty({layout_.total}, DType::F32, master_.device());
  dp_.all_gather(master_.detach(), flat, layout_.shard_counts);
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i].second;
    p.copy_(flat.narrow(0, layout_.offsets[i], p.numel()).view(p.shape()));
  }
  return norm_clip;
}

void ZeroOptimizer::zero_grad() {
  for (auto& [n, p] : params_) p.set_grad(Tensor());
  master_.set_grad(Tensor());
}

std::map<std::string, Tensor> ZeroOptimizer::state_dict() const {
  std::map<std::string, Tensor> sd = inner_->state_dict();
  sd["zero_master"] = master_.detach();
  return sd;
}

void ZeroOptimizer::load_state_dict(const std::map<std::string, Tensor>& sd) {
  auto it = sd.find("zero_master");
  FORGE_CHECK(it != sd.end(), "ZeRO optimiser state has no 'zero_master' slice");
  FORGE_CHECK(it->second.numel() == master_.numel(), "ZeRO optimiser state holds a slice of ", it->second.numel(),
              " elements, this rank owns ", master_.numel(), " (was the run saved with another layout?)");
  NoGradGuard ng;
  master_.copy_(it->second);
  std::map<std::string, Tensor> rest = sd;
  rest.erase("zero_master");
  inner_->load_state_dict(rest);
}

}  // namespace forge::train
