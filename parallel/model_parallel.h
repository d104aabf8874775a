// One rank's part of a model under tensor and pipeline parallelism: its tensor-parallel shard
// (tensor_parallel.h) of the layers of its pipeline stage. Stage s of pp holds layers
// [s * L / pp, (s + 1) * L / pp) (the first L % pp stages one more); the first stage also holds
// the embedding, the last one the final norm and the LM head. With tied embeddings the last stage
// keeps a copy of the embedding as its head: the first stage owns and updates the weight, the
// copy's gradient is sent to it before its final backward and the updated weight comes back
// after each step (tied_* below). Everything else of the full model is released on this rank.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "models/causal_lm.h"
#include "parallel/mesh.h"
#include "parallel/tensor_parallel.h"
#include "peft/lora.h"

namespace forge::parallel {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class ModelParallel {
 public:
  // Splits `model` (and `lora`, attached to it) for this rank of the mesh, in place.
  ModelParallel(const Mesh& mesh, models::CausalLM& model, peft::LoraModel* lora);

  bool first_stage() const { return mesh_.pp_rank() == 0; }
  bool last_stage() const { return mesh_.pp_rank() == mesh_.shape().pp - 1; }
  int64_t layer_begin() const { return begin_; }
  int64_t layer_end() const { return end_; }
  // Of the named parameters, those this rank trains (its stage; not the tied copy).
  NamedTensors trained_here(const NamedTensors& all) const;
  // Each parameter's weight in the global gradient norm: 1 for a tp-split parameter, 1 / tp for
  // one that every tp rank holds whole (its squares are summed over the tp group).
  double norm_weight(const std::string& name) const;

  // Summed loss of this (last) stage's final hidden states [B, T, C] against labels [B, T].
  Tensor loss_sum(const Tensor& hidden, const Tensor& labels) const;
  // Each target's log-probability [B, T] (f32; 0 where the label is -100), of the logits divided by
  // temperature (GRPO: the distribution it sampled), and each row's sum [B].
  Tensor token_logps(const Tensor& hidden, const Tensor& labels, double temperature = 1.0) const;
  Tensor row_logps(const Tensor& hidden, const Tensor& labels) const;
  // Rank that reports losses: the last stage's first tp rank (of each dp replica).
  bool reports() const { return last_stage() && mesh_.tp_rank() == 0; }

  // Tied embeddings over several stages in a full finetune (no-ops otherwise): the last stage
  // sends its head copy's gradient, the first adds it before its final backward's hooks run;
  // after the step the first stage sends the updated weight to the copy.
  bool tied_across_stages() const { return tied_; }
  void tied_send_grad();
  void tied_add_grad();
  void tied_sync_weight();

  // Gathers every parameter of the full model (and adapter) onto world rank 0, whose model then
  // holds full tensors (for saving; it is no longer split). Every rank must call it.
  void gather_to_rank0();

 private:
  int stage_of(const std::string& name) const;  // owning stage of a model or PEFT name
  std::pair<int64_t, int64_t> layers_of_stage(int64_t stage) const;  // [begin, end)
  const Mesh& mesh_;
  models::CausalLM& model_;
  peft::LoraModel* lora_;
  std::map<std::string, ParamSplit> splits_;
  int64_t begin_ = 0, end_ = 0;
  bool tied_ = false;
};

}  // namespace forge::parallel
