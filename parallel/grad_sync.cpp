// Bucketed gradient reduction (see grad_sync.h).
#include "parallel/grad_sync.h"

#include <algorithm>

#include "core/autograd.h"
#include "core/error.h"

namespace forge::parallel {

FlatLayout::FlatLayout(const std::vector<Tensor>& params, int rank, int ranks) {
  for (const Tensor& p : params) {
    offsets.push_back(total);
    total += p.numel();
  }
  const int64_t per = (total + ranks - 1) / ranks;
  for (int r = 0; r < ranks; ++r)
    shard_counts.push_back(std::max<int64_t>(0, std::min(total, (r + 1) * per) - std::min(total, r * per)));
  lo = std::min(total, rank * per);
  hi = std::min(total, (rank + 1) * per);
}

std::vector<int64_t> FlatLayout::counts_in(int64_t a, int64_t b) const {
  std::vector<int64_t> c;
  int64_t start = 0;
  for (int64_t n : shard_counts) {
    c.push_back(std::max<int64_t>(0, std::min(b, start + n) - std::max(a, start)));
    start += n;
  }
  return c;
}

GradSync::GradSync(Communicator& dp, std::vector<Tensor> params, Mode mode, int64_t bucket_bytes)
    : comm_(dp), params_(std::move(params)), mode_(mode), layout_(params_, dp.rank(), dp.size()) {
  bucket_of_.resize(params_.size());
  // Buckets from the last parameter backwards, each a run of consecutive parameters.
  for (int64_t i = int64_t(params_.size()) - 1; i >= 0;) {
    Bucket k;
    k.last = i;
    int64_t bytes = 0;
    while (i >= 0 && (bytes == 0 || bytes + params_[size_t(i)].numel() * 4 <= bucket_bytes))
      bytes += params_[size_t(i--)].numel() * 4;
    k.first = i + 1;
    k.a = layout_.offsets[size_t(k.first)];
    k.b = layout_.offsets[size_t(k.last)] + params_[size_t(k.last)].numel();
    for (int64_t p = k.first; p <= k.last; ++p) bucket_of_[size_t(p)] = buckets_.size();
    buckets_.push_back(std::move(k));
  }
  // Buckets and the shard live where the parameters do (a GPU: NCCL moves them).
  device_ = params_.empty() ? Device::cpu() : params_[0].device();
  if (mode_ == Mode::ReduceScatter) shard_grad_ = Tensor::zeros({layout_.hi - layout_.lo}, DType::F32, device_);
  self_ = std::make_shared<GradSync*>(this);
  std::weak_ptr<GradSync*> weak = self_;
  for (size_t i = 0; i < params_.size(); ++i)
    params_[i].register_post_accumulate_grad_hook([weak, i](Tensor&) {
      if (auto s = weak.lock(); s && *s) (*s)->on_ready(i);
    });
}

GradSync::~GradSync() { *self_ = nullptr; }

void GradSync::on_ready(size_t param) {
  if (!sync_) return;
  ++buckets_[bucket_of_[param]].ready;
  while (next_ < buckets_.size()) {
    Bucket& k = buckets_[next_];
    if (k.ready < k.last - k.first + 1) break;
    launch(k);
    ++next_;
  }
  for (size_t i = 0; i < next_; ++i)  // let MPI progress the ones in flight
    if (buckets_[i].work) buckets_[i].work->test();
}

void GradSync::launch(Bucket& k) {
  NoGradGuard ng;
  k.buf = Tensor::empty({k.b - k.a}, DType::F32, device_);
  for (int64_t p = k.first; p <= k.last; ++p) {
    const Tensor& w = params_[size_t(p)];
    Tensor dst = k.buf.narrow(0, layout_.offsets[size_t(p)] - k.a, w.numel());
    if (w.grad().defined()) dst.copy_(w.grad().reshape({-1}));
    else dst.zero_();
  }
  if (mode_ == Mode::AllReduce) {
    k.work = comm_.all_reduce_async(k.buf);
    return;
  }
  // This rank's part of [a, b) lands straight in its slice of the shard gradient.
  const int64_t s0 = std::clamp(k.a, layout_.lo, layout_.hi), s1 = std::clamp(k.b, layout_.lo, layout_.hi);
  Tensor out = shard_grad_.narrow(0, s0 - layout_.lo, s1 - s0);
  k.work = comm_.reduce_scatter_async(k.buf, out, layout_.counts_in(k.a, k.b));
}

void GradSync::complete(Bucket& k) {
  NoGradGuard ng;
  k.work->wait();
  k.work.reset();
  for (int64_t p = k.first; p <= k.last; ++p) {
    Tensor& w = params_[size_t(p)];
    if (mode_ == Mode::ReduceScatter) {
      w.set_grad(Tensor());  // the full gradient is no longer needed: only the slice is kept
      continue;
    }
    Tensor src = k.buf.narrow(0, layout_.offsets[size_t(p)] - k.a, w.numel()).view(w.shape());
    if (!w.grad().defined()) w.set_grad(Tensor::empty(w.shape(), w.dtype(), w.device()));
    w.grad().copy_(src);
  }
  k.buf = Tensor();
  k.ready = 0;
}

void GradSync::finish() {
  for (; next_ < buckets_.size(); ++next_) launch(buckets_[next_]);
  for (Bucket& k : buckets_) complete(k);
  next_ = 0;
}

}  // namespace forge::parallel
