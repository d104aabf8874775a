// Optimisers over named parameters: AdamW (decoupled weight decay, Loshchilov & Hutter) and SGD
// with momentum. State is f32 whatever the parameter dtype; a bf16/f16 parameter gets an f32
// master copy that takes the update and is rounded into the parameter after each step.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "parallel/comm.h"

namespace forge::train {

using NamedParams = std::vector<std::pair<std::string, Tensor>>;

class Optimizer {
 public:
  explicit Optimizer(NamedParams params);
  virtual ~Optimizer() = default;
  // One update from the parameters' .grad (parameters without a gradient are skipped), each
  // gradient first multiplied by grad_scale when given: an f32 [1] tensor on the parameters'
  // device (grad_norm_clip's factor, applied without a read back).
  void step(const Tensor& grad_scale = Tensor());
  void zero_grad();
  double lr = 1e-3;
  int64_t steps() const { return t_; }
  // Everything needed to continue exactly: "<kind>/<param name>" tensors and the step count.
  std::map<std::string, Tensor> state_dict() const;
  void load_state_dict(const std::map<std::string, Tensor>& sd);  // throws naming what is missing
  const NamedParams& params() const { return params_; }

 protected:
  // A parameter with a gradient this step: p32 the f32 values to update (the parameter itself or
  // its master copy), grad its gradient in the parameter's dtype, lowp the bf16/f16 parameter a
  // master is rounded into afterwards (undefined for f32 parameters).
  struct Item {
    size_t i;
    Tensor p32, grad, lowp;
  };
  // The step's update of every item. By default one update() each on an f32 gradient (times scale).
  virtual void update_all(const std::vector<Item>& items, const Tensor& scale);
  virtual void update(size_t, Tensor&, const Tensor&) {}
  Tensor& slot(const std::string& kind, size_t i);  // f32 zeros of the parameter's shape on first use
  int64_t t_ = 0;

 private:
  NamedParams params_;
  std::map<std::string, Tensor> state_;  // "<kind>/<name>"
};

struct AdamWOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

// The update runs fused over all parameters (adamw_step_: one pass over each, reading the
// gradient in its own dtype and rounding masters into bf16 parameters in the same pass).
class AdamW : public Optimizer {
 public:
  AdamW(NamedParams params, AdamWOptions opt);
  AdamW(std::vector<Tensor> params, AdamWOptions opt);  // names "0", "1", ...
  AdamWOptions opt;

 protected:
  void update_all(const std::vector<Item>& items, const Tensor& scale) override;
};

struct SGDOptions {
  double lr = 1e-2, momentum = 0.0, weight_decay = 0.0;
};

class SGD : public Optimizer {
 public:
  SGD(NamedParams params, SGDOptions opt);
  SGDOptions opt;

 protected:
  void update(size_t i, Tensor& p32, const Tensor& g) override;
};

// The global L2 norm of `grads` - each tensor's sum of squares times its weight (1 / the ranks
// holding the same copy, for a model split over ranks), summed over each of `groups` in turn - and
// torch's clip factor min(1, max_norm / (norm + 1e-6)) (1 when max_norm is 0): {norm, factor} as an
// f32 [2] tensor on `device`, computed there without a read back, so a GPU never waits for it.
Tensor grad_norm_clip(const std::vector<Tensor>& grads, const std::vector<double>& weights, double max_norm,
                      Device device, const std::vector<parallel::Communicator*>& groups = {});

// The same on params' gradients, read back and applied in place (torch.nn.utils.clip_grad_norm_):
// returns the norm before clipping.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm, const std::vector<double>& weights = {},
                      parallel::Communicator* group = nullptr);

}  // namespace forge::train
