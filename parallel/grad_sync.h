// Data-parallel gradient synchronisation. The trainable parameters, laid end to end, form one flat
// f32 space; ZeRO gives rank r of n the slice [r * ceil(P/n), (r+1) * ceil(P/n)) of it.
// Parameters are grouped into buckets of consecutive parameters (about bucket_bytes each, last
// parameter first: the order backward produces gradients). A post-accumulate hook marks a
// parameter ready; a bucket is reduced as soon as it is complete and every earlier bucket has been
// launched (the same order on every rank), so communication overlaps the rest of backward.
//   AllReduce (DDP, ZeRO-1): every rank ends with the summed gradient in each .grad.
//   ReduceScatter (ZeRO-2): each rank ends with the sum over its own slice only, in shard_grad(),
//   and the full .grad tensors are freed as their buckets complete.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/tensor.h"
#include "parallel/comm.h"

namespace forge::parallel {

// Where each parameter sits in the flat space and which slice this rank owns.
struct FlatLayout {
  std::vector<int64_t> offsets;  // per parameter
  int64_t total = 0;
  int64_t lo = 0, hi = 0;        // this rank's slice
  std::vector<int64_t> shard_counts;  // slice length of every rank

  FlatLayout(const std::vector<Tensor>& params, int rank, int ranks);
  // Elements of [a, b) that fall into each rank's slice.
  std::vector<int64_t> counts_in(int64_t a, int64_t b) const;
};

class GradSync {
 public:
  enum class Mode { AllReduce, ReduceScatter };
  GradSync(Communicator& dp, std::vector<Tensor> params, Mode mode, int64_t bucket_bytes = 25 << 20);
  ~GradSync();
  GradSync(const GradSync&) = delete;
  GradSync& operator=(const GradSync&) = delete;

  // Off during the non-final micro-batches of a step: gradients just accumulate locally.
  void set_sync(bool on) { sync_ = on; }
  // After the final backward: launches the buckets still pending (a parameter without a gradient
  // counts as zeros, so ranks that saw no data still take part) and waits for all of them.
  void finish();
  const FlatLayout& layout() const { return layout_; }
  // ReduceScatter: this rank's [lo, hi) slice of the summed flat gradient (f32).
  const Tensor& shard_grad() const { return shard_grad_; }
  int64_t buckets() const { return int64_t(buckets_.size()); }

 private:
  struct Bucket {
    int64_t first, last;  // parameter indices, inclusive
    int64_t a, b;         // flat range
    int64_t ready = 0;
    Tensor buf;           // f32 [b - a] while in flight
    std::unique_ptr<Work> work;
  };
  void on_ready(size_t param);
  void launch(Bucket& k);
  void complete(Bucket& k);

  Communicator& comm_;
  std::vector<Tensor> params_;
  Mode mode_;
  FlatLayout layout_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_;  // per parameter
  size_t next_ = 0;                // next bucket to launch
  bool sync_ = true;
  Tensor shard_grad_;
  Device device_;  // the parameters' (buckets and the shard gradient are made there)
  std::shared_ptr<GradSync*> self_;  // hooks hold a copy; cleared on destruction
};

}  // namespace forge::parallel
