// nn: Modules with HF-style dotted parameter names, and the Linear / Embedding / RMSNorm layers.
// Every weight matmul goes through Linear, so adapters (LoRA) attach by name without model edits.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/ops.h"

namespace forge::nn {

class Module {
 public:
  virtual ~Module() = default;

  // All parameters, depth first in registration order, with dotted names ("layers.0.weight").
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<Tensor> parameters() const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_modules() const;  // self as ""
  std::map<std::string, Tensor> state_dict() const;
  // Copies values in (converting dtype); reports missing/unexpected names and shape mismatches.
  // share: where dtype and device already match, the parameter takes the source's memory
  // instead of a copy (a memory-mapped checkpoint then loads without copying).
  void load_state_dict(const std::map<std::string, Tensor>& sd, bool strict = true, bool share = false);
  Tensor parameter(const std::string& dotted_name) const;  // throws naming the module when absent

  void zero_grad();
  void train(bool on = true);
  bool training() const { return training_; }
  void to(DType dtype);    // floating parameters, in place (handles held elsewhere see it)
  void to(Device device);
  int64_t num_parameters(bool trainable_only = false) const;

 protected:
  Tensor& register_parameter(const std::string& name, Tensor t, bool requires_grad = true);
  void drop_parameter(const std::string& name);  // no longer a parameter (nor held by the module)
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    children_.emplace_back(name, m);
    return m;
  }

 private:
  void collect(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out) const;
  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// While one is alive on this thread, Linear and Embedding leave their new weights unfilled (and
// untouched, so a large one takes no resident memory): for models whose weights are loaded or
// initialised right after (drawing 1.2B random numbers that a checkpoint then replaced took 16 s
// and left 2.5 GB behind).
class SkipInitGuard {
 public:
  SkipInitGuard();
  ~SkipInitGuard();
  SkipInitGuard(const SkipInitGuard&) = delete;
  SkipInitGuard& operator=(const SkipInitGuard&) = delete;
  static bool active();

 private:
  bool prev_;
};

// A list of modules named "0", "1", ... (as torch.nn.ModuleList).
class ModuleList : public Module {
 public:
  template <class M>
  std::shared_ptr<M> push_back(std::shared_ptr<M> m) {
    items_.push_back(m);
    return register_module(std::to_string(items_.size() - 1), m);
  }
  size_t size() const { return items_.size(); }
  std::shared_ptr<Module> operator[](size_t i) const { return items_[i]; }

 private:
  std::vector<std::shared_ptr<Module>> items_;
};

// Tensor parallelism as a layer sees it: its place in the group and the two collectives Megatron
// calls f and g (parallel/tensor_parallel.h makes one from a communicator).
struct TensorParallel {
  int rank = 0, size = 1;
  std::function<Tensor(const Tensor&)> copy;    // f: identity forward; gradient summed over the group
  std::function<Tensor(const Tensor&)> reduce;  // g: summed over the group forward; identity backward
};
// How a Linear's weight [out, in] is split over a tensor-parallel group.
enum class Split {
  None,
  Columns,  // output features (q/k/v, gate/up, the LM head): input replicated, output split
  Rows,     // input features (o, down): input split, output summed over the group
};

// Something added to a Linear's output (LoRA): y = base(x) + adapter->forward(x).
struct LinearAdapter {
  virtual ~LinearAdapter() = default;
  virtual Tensor forward(const Tensor& x) = 0;  // the delta added to W x (undefined: none)
};

// A frozen weight kept in a compressed form (QLoRA's NF4, peft/nf4.h): it computes x W^T itself,
// with a gradient for x only, and can give back the full weight.
struct QuantizedWeight {
  virtual ~QuantizedWeight() = default;
  virtual Tensor linear(const Tensor& x) const = 0;  // x [..., in] -> [..., out] in x's dtype
  virtual Tensor dequantize(DType dtype) const = 0;  // [out, in]
  virtual int64_t nbytes() const = 0;                // what it holds in memory
};

class Linear : public Module {
 public:
  // PyTorch's init: weight and bias uniform in +-1/sqrt(in_features).
  Linear(int64_t in_features, int64_t out_features, bool bias = true, DType dtype = DType::F32,
         Generator* gen = nullptr);
  Tensor forward(const Tensor& x) const;
  int64_t in_features, out_features;
  Tensor weight;  // [out, in]
  Tensor bias;    // [out] or undefined (not split under Split::Rows)
  std::shared_ptr<LinearAdapter> adapter;
  // Set (and `weight` released) when the frozen base weight is quantised (QLoRA).
  std::shared_ptr<const QuantizedWeight> quantized;
  Split split = Split::None;  // with tp set: in/out_features and weight are this rank's part
  Split tp_plan = Split::Columns;  // how the architecture splits it under tensor parallelism
  // A fused projection (Phi-3's qkv_proj, gate_up_proj): its output rows in parts (q, k, v / gate,
  // up) of these sizes (this rank's under tp; each part is split on its own), and the names of the
  // separate projections each part stands for (LoRA target_modules may name them). Empty: one.
  std::vector<int64_t> segments;
  std::vector<std::string> part_names;
  std::shared_ptr<const TensorParallel> tp;
  // Inference twin of a weight on the CPU (pack_linear_weight), used when use_packed says so
  // (decode steps). A frozen copy: made for serving, where weights never change; reset it before
  // changing the weight.
  Tensor packed;
  static constexpr int64_t kPackedRows = 64;
  void pack();  // makes `packed` when the weight is packable and not split
  // Computes with q from now on and lets the full weight go (it leaves the parameters too).
  void quantize(std::shared_ptr<const QuantizedWeight> q);
};

// A weight that gets a packed decode twin: f32 on the CPU, or bf16 where the CPU kernel is built
// with AVX512-BF16 (cpu::packed_bf16_fast; elsewhere oneDNN's bf16 matmul is faster).
bool packable(const Tensor& w);
// x runs on the packed twin: there is one, no gradients are recorded, and x is at most
// Linear::kPackedRows rows on the CPU in the twin's dtype.
bool use_packed(const Tensor& packed, const Tensor& x);

class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t dim, DType dtype = DType::F32, Generator* gen = nullptr);
  Tensor forward(const Tensor& ids) const;
  Tensor weight;  // [V, C], normal(0, 1) init; with tp, rows [vocab_start, vocab_start + V/tp)
  int64_t vocab_start = 0;
  std::shared_ptr<const TensorParallel> tp;
};

class RMSNorm : public Module {
 public:
  // unit_offset: Gemma's form, x̂ * (1 + weight) with the weight starting at zero.
  explicit RMSNorm(int64_t dim, double eps = 1e-6, DType dtype = DType::F32, bool unit_offset = false);
  Tensor forward(const Tensor& x) const { return rms_norm(x, weight, eps, unit_offset); }
  Tensor weight;  // [C], ones (zeros with unit_offset): the identity
  double eps;
  bool unit_offset;
};

}  // namespace forge::nn
