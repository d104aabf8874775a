// ZeRO-3 parameter gathering and release (see zero3.h).
#include "parallel/zero3.h"

#include <algorithm>

#include "core/autograd.h"
#include "core/error.h"
#include "core/storage.h"

namespace forge::parallel {

ParamShards::ParamShards(Communicator& dp, std::vector<Tensor> params, const std::vector<int>& unit_of,
                         const FlatLayout& layout, const Tensor& master)
    : comm_(dp.split(0, dp.rank(), "dp (ZeRO-3 gathers)")), params_(std::move(params)), unit_of_(unit_of),
      layout_(layout), master_(master), self_(std::make_shared<ParamShards*>(this)) {
  FORGE_CHECK(unit_of_.size() == params_.size(), "ParamShards: one unit per parameter expected");
  int outer = kOuter;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (unit_of_[i] < 0) {  // each run of outer parameters is a unit of its own: -1, -2, ...
      if (i > 0 && unit_of_[i - 1] >= 0 && units_.count(outer)) --outer;
      unit_of_[i] = outer;
    }
    Unit& u = units_[unit_of_[i]];
    FORGE_CHECK(u.params.empty() || u.params.back() + 1 == i, "ParamShards: unit ", unit_of_[i],
                " is not a run of consecutive parameters");
    if (u.params.empty()) u.a = layout_.offsets[i];
    u.params.push_back(i);
    u.b = layout_.offsets[i] + params_[i].numel();
    std::weak_ptr<ParamShards*> weak = self_;
    params_[i].register_post_accumulate_grad_hook([weak, i](Tensor&) {
      if (auto s = weak.lock(); s && *s) (*s)->on_grad(i);
    });
  }
}

ParamShards::~ParamShards() { *self_ = nullptr; }

void ParamShards::prefetch(int id) {
  auto it = units_.find(id);
  if (it == units_.end() || it->second.resident || it->second.work) return;
  Unit& u = it->second;
  // This rank's part of the unit's flat range, gathered from every rank's slice.
  const int64_t s = std::max(u.a, layout_.lo), e = std::min(u.b, layout_.hi);
  const Device dev = master_.device();  // gathered where the masters are (a GPU: NCCL)
  u.send = e > s ? master_.detach().narrow(0, s - layout_.lo, e - s) : Tensor::empty({0}, DType::F32, dev);
  u.buf = Tensor::empty({u.b - u.a}, DType::F32, dev);
  u.work = comm_->all_gather_async(u.send, u.buf, layout_.counts_in(u.a, u.b));
}

void ParamShards::enter(int layer, bool backward) {
  gather(layer);
  const int next = backward ? layer - 1 : layer + 1;
  if (next >= 0) prefetch(next);
}

void ParamShards::gather(int id) {
  auto it = units_.find(id);
  if (it == units_.end() || it->second.resident) return;
  Unit& u = it->second;
  prefetch(id);
  u.work->wait();
  u.work.reset();
  NoGradGuard ng;
  for (size_t i : u.params) {
    const Tensor& p = params_[i];
    Tensor v = u.buf.narrow(0, layout_.offsets[i] - u.a, p.numel()).view(p.shape());
    if (v.dtype() != p.dtype()) v = v.to(p.dtype());
    TensorImpl* d = p.impl();  // point the parameter at its gathered values, keeping its .grad
    d->storage = v.impl()->storage;
    d->strides = v.strides();
    d->offset = v.offset();
  }
  u.send = u.buf = Tensor();
  u.resident = true;
  u.pending = int(u.params.size());
}

void ParamShards::release(int id) {
  auto it = units_.find(id);
  if (it == units_.end() || !it->second.resident) return;
  for (size_t i : it->second.params) params_[i].impl()->storage = Storage::allocate(0, params_[i].device());
  it->second.resident = false;
}

void ParamShards::gather_outer() {
  for (auto& [id, u] : units_)
    if (id < 0) prefetch(id);
  for (auto& [id, u] : units_)
    if (id < 0) gather(id);
}

void ParamShards::release_layers() {
  for (auto& [id, u] : units_)
    if (id >= 0) release(id);
}

Tensor ParamShards::phantom(int64_t begin, int64_t end, const Tensor& in, const Shape& out_shape, DType dtype) {
  // The same calls, in the same order, as before_layer / after_layer and the gradient hooks make.
  for (int64_t i = begin; i < end; ++i) {
    enter(int(i), false);
    release(int(i));
  }
  Tensor out = Tensor::zeros(out_shape, dtype, master_.device());
  if (!grad_enabled()) return out;
  Tensor src = in.defined() && in.requires_grad() ? in : Tensor::zeros({1}).requires_grad_(true);
  std::weak_ptr<ParamShards*> weak = self_;
  record("zero3_phantom", {src}, out,
         [weak, begin, end, shape = src.shape(), dt = src.dtype(), dev = src.device()](const std::vector<Tensor>&,
                                                                                      const std::vector<bool>&) {
           if (auto s = weak.lock(); s && *s)
             for (int64_t i = end - 1; i >= begin; --i) {
               (*s)->enter(int(i), true);
               (*s)->release(int(i));
             }
           return std::vector<Tensor>{Tensor::zeros(shape, dt, dev)};
         });
  return out;
}

void ParamShards::gather_all() {
  for (auto& [id, u] : units_) prefetch(id);
  for (auto& [id, u] : units_) gather(id);
}

void ParamShards::release_all() {
  for (auto& [id, u] : units_) release(id);
}

void ParamShards::on_grad(size_t i) {
  const int id = unit_of_[i];
  Unit& u = units_.at(id);
  // A layer is done with once all its gradients are in (the recompute's graph may still hold
  // views; they go with it). The outer units stay until the step ends.
  if (id >= 0 && u.resident && --u.pending <= 0) release(id);
}

}  // namespace forge::parallel
