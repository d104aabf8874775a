// AdamW (decoupled weight decay, Loshchilov & Hutter) with f32 moments whatever the parameter dtype.
#pragma once
#include <vector>

#include "core/tensor.h"

namespace forge::train {

struct AdamWOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

class AdamW {
 public:
  AdamW(std::vector<Tensor> params, AdamWOptions opt);
  // One update from the parameters' .grad (parameters without a gradient are skipped).
  void step();
  void zero_grad();
  AdamWOptions& options() { return opt_; }
  int64_t steps() const { return t_; }

 private:
  std::vector<Tensor> params_, m_, v_;  // m_, v_ in f32
  AdamWOptions opt_;
  int64_t t_ = 0;
};

}  // namespace forge::train
