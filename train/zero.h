// ZeRO stages 1 and 2 (Rajbhandari et al.): the optimiser state and the f32 master weights are
// sharded over the data-parallel ranks. Each rank updates only its slice of the flat parameter
// space (the elementwise AdamW/SGD rules make that exact), then the slices are all-gathered back
// into every parameter. Stage 1 takes its slice from the all-reduced gradients; stage 2 receives
// only its slice (GradSync in ReduceScatter mode).
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "parallel/grad_sync.h"
#include "train/optimizer.h"

namespace forge::train {

class ZeroOptimizer {
 public:
  using Factory = std::function<std::unique_ptr<Optimizer>(NamedParams)>;
  // params: every trainable parameter (the same list, in the same order, on every dp rank).
  // norm_weights (one per parameter, or empty: all 1) and model_group: as clip_grad_norm's, for a
  // model that is also split over tp/pp ranks (the dp slices' squares are summed first).
  ZeroOptimizer(parallel::Communicator& dp, NamedParams params, const parallel::FlatLayout& layout, Factory make,
                std::vector<double> norm_weights = {}, parallel::Communicator* model_group = nullptr);
  // Stage 3: the step leaves the parameters alone (ParamShards gathers them from master()).
  void set_gather_after_step(bool on) { gather_after_step_ = on; }
  const Tensor& master() const { return master_; }
  // One update: takes this rank's gradient slice (from the .grad tensors, or `shard_grad` when
  // given), clips by the global norm, steps, all-gathers the weights. Returns grad_norm_clip's
  // {norm before clipping, factor} on the device (no read back).
  Tensor step(double lr, double max_norm, const Tensor* shard_grad = nullptr);
  void zero_grad();
  // This rank's state: the master slice and the inner optimiser's moments.
  std::map<std::string, Tensor> state_dict() const;
  void load_state_dict(const std::map<std::string, Tensor>& sd);

 private:
  parallel::Communicator& dp_;
  NamedParams params_;
  const parallel::FlatLayout& layout_;
  std::vector<double> norm_weights_;
  parallel::Communicator* model_group_;
  Tensor master_;  // f32 [hi - lo]
  bool gather_after_step_ = true;
  std::unique_ptr<Optimizer> inner_;
};

}  // namespace forge::train
