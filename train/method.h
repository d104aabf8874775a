// A training method is a plug-in behind the trainer (train.method in the recipe): it says which
// rows go together, how a step's loss is normalised and what loss the last pipeline stage computes
// from the final hidden states; the mesh, PEFT, ZeRO/TP/PP, checkpoints, eval and metrics stay the
// trainer's. SFT (next-token cross-entropy), DPO (train/dpo.h) and GRPO (train/grpo.h) are the
// methods. SFT and DPO train on the dataset's rows; GRPO makes its own (rewarded rollouts).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/packing.h"
#include "models/causal_lm.h"
#include "parallel/mesh.h"
#include "parallel/model_parallel.h"
#include "parallel/pipeline.h"
#include "parallel/zero3.h"
#include "peft/lora.h"
#include "train/datasets.h"
#include "train/recipe.h"

namespace forge::train {

// The last stage's loss for micro-batch i of a pass, from its final hidden states.
using Head = std::function<Tensor(const Tensor& hidden, const data::Batch& b, int64_t i)>;

// A pass over micro-batches as pipeline stage (pp = 1: the whole model), the heads' results summed
// into *loss (on the last stage); scale multiplies what backward starts from. Under ZeRO-3
// (shards set), indices past mbs are phantoms making the same gathers as the other dp ranks.
parallel::Stage make_stage(models::CausalLM& model, const parallel::ModelParallel& mp,
                           const std::vector<data::Batch>& mbs, const Head& head, double scale, Tensor* loss,
                           parallel::ParamShards* shards = nullptr);
// The same without gradients (GPipe): every rank of the mesh calls it with its micro-batches; the
// heads' results summed into *loss when given.
void forward_only(models::CausalLM& model, const parallel::ModelParallel& mp, const parallel::Mesh& mesh,
                  const std::vector<data::Batch>& mbs, const Head& head, parallel::ParamShards* shards,
                  Tensor* loss = nullptr);

// What the trainer lends a method: the model as this rank holds it and how to run it.
struct MethodContext {
  const Recipe& recipe;
  const parallel::Mesh& mesh;
  models::CausalLM& model;
  const parallel::ModelParallel& mp;
  peft::LoraModel* lora;            // null for a full finetune
  parallel::ParamShards* shards;    // ZeRO-3, else null
};

// The reference policy of DPO and GRPO's KL term: a frozen copy of the starting weights split as
// the policy is (a full finetune), or none, and then the policy itself with its adapters off.
struct Reference {
  std::shared_ptr<models::CausalLM> model;
  std::unique_ptr<parallel::ModelParallel> mp;
};
Reference load_frozen_copy(const MethodContext& ctx);
// A pass of the reference over micro-batches without gradients, each last stage's hidden states
// to `head`; every rank of the mesh calls it.
void reference_forward(const MethodContext& ctx, const Reference& ref, const std::vector<data::Batch>& mbs,
                       const Head& head);

class Method {
 public:
  virtual ~Method() = default;
  // Consecutive examples that stay together, one per row (a DPO pair: 2).
  virtual int64_t group() const { return 1; }
  // What a micro-batch adds to the step's normaliser (summed over dp): the loss of a step is the
  // sum of its micro-batches' loss_sum over the sum of their units.
  virtual double units(const data::Batch& b) const = 0;
  // Every rank, once before the first step (resumed: the run continues a checkpoint); `data`
  // holds the examples the passes' micro-batches index (Batch::examples).
  virtual void before_training(const Datasets& /*data*/, bool /*resumed*/) {}
  // Every rank, before a pass over these micro-batches (training step, or eval): DPO's reference pass.
  virtual void before_pass(const std::vector<data::Batch>& /*mbs*/, bool /*eval*/) {}
  // Last stage: micro-batch i's summed loss (differentiable).
  virtual Tensor loss_sum(const Tensor& hidden, const data::Batch& b, int64_t i) = 0;
  // Methods that make their rows (GRPO): the optimiser steps one epoch takes (> 0), and each
  // step's micro-batches for this rank, made from the weights as they are when it is called
  // (never ahead of the previous step's update). 0: the trainer batches the dataset.
  virtual int64_t steps_per_epoch() const { return 0; }
  virtual std::vector<data::Batch> make_step(int64_t /*step*/, int64_t /*epoch*/) { return {}; }
  // What a checkpoint keeps besides weights and optimiser (GRPO: the rollouts a step reuses), and
  // its return on resume; names without a prefix, this rank's own.
  virtual std::map<std::string, Tensor> state() const { return {}; }
  virtual void load_state(const std::map<std::string, Tensor>& /*state*/) {}
  // Methods with their own evaluation (GRPO: rewards of completions of held-out prompts):
  // true, and it writes its eval_* values into `line`. Every rank calls it.
  virtual bool has_eval() const { return false; }
  virtual void evaluate(nlohmann::json& /*line*/) {}
  // The eval line in words, for the log ("" for the trainer's wording).
  virtual std::string eval_text(const nlohmann::json& /*line*/) const { return ""; }
  // Files the method writes beside metrics.jsonl at the end (GRPO: the reward curve); lead rank.
  virtual void finish(const std::string& /*metrics_path*/) {}

  // Forgets the metrics gathered so far (a pass whose metrics are not logged came before).
  virtual void reset_metrics() {}
  // The method's metric sums since reset_metrics, on the device: this rank's, undefined where it
  // holds none. The trainer reads them back with the loss, in one copy per logged step.
  virtual Tensor metric_sums() const { return Tensor(); }
  // Those sums as read back (empty: none here), summed over the world and divided by `units` (the
  // pass's total), into a metrics line under `prefix` ("" or "eval_"); a short text for the
  // progress bar. Every rank calls it.
  virtual std::string take_metrics(const std::vector<float>& /*sums*/, nlohmann::json& /*line*/, double /*units*/,
                                   const std::string& /*prefix*/) {
    return "";
  }
};

// The recipe's train.method, for this rank's part of the model.
std::unique_ptr<Method> make_method(const MethodContext& ctx);

}  // namespace forge::train
