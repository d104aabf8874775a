// Tensor parallelism in Megatron's layout (Shoeybi et al. 2019). Within a group of n ranks:
//   q/k/v and gate/up are split by output features (each rank has Hq/n and Hkv/n heads, F/n of
//   the MLP), o and down by input features (their outputs are summed over the group);
//   the embedding and the LM head are split by vocabulary rows, and the loss is computed over the
//   split logits without gathering them (vocab_parallel_cross_entropy).
// LoRA follows its base weight: on a column-split Linear, A is whole and B's rows are split; on a
// row-split one, A's columns are split and B is whole. Replicated parameters (norms, row-split
// biases, the whole LoRA factors) get identical gradients on every rank of the group.
#pragma once
#include <map>
#include <memory>
#include <string>

#include "core/nn.h"
#include "models/causal_lm.h"
#include "parallel/comm.h"
#include "peft/lora.h"

namespace forge::parallel {

// The f and g collectives of a layer (core/nn.h) over `group`; the group must outlive every
// model and autograd graph that uses it. Activations are summed in f32 whatever their dtype.
std::shared_ptr<nn::TensorParallel> make_tensor_parallel(Communicator& group);

// How a parameter of the full model is held on a rank.
struct ParamSplit {
  Shape full;     // its shape in the full model
  int dim = -1;   // split over the tp group along this dim; -1: whole on every tp rank
  std::vector<int64_t> segments;  // fused parts along dim (full sizes), each split on its own; empty: one
};

// This rank's part of t along dim: of each segment (full sizes; empty: the whole dim) its
// [rank * n / size, (rank + 1) * n / size), concatenated.
Tensor tp_part(const Tensor& t, int dim, int rank, int size, const std::vector<int64_t>& segments = {});
// Where rank `rank`'s part (tp_part) sits in the full tensor: each segment's piece copied in place.
void place_tp_part(Tensor& full, const Tensor& part, int dim, int rank, int size,
                   const std::vector<int64_t>& segments = {});

// Splits a full model (and the LoRA adapters attached to it) into this rank's part, in place:
// same module objects, smaller weights, layers set to split and reduce over `group`. Returns the
// split of every parameter by name (model names and PEFT names of the adapters). Throws when the
// heads, key/value heads, MLP width or vocabulary do not divide by the group's size.
std::map<std::string, ParamSplit> shard_model(models::CausalLM& model, peft::LoraModel* lora, Communicator& group);

// Summed cross-entropy over rows whose label is not ignore_index, from this rank's columns
// [vocab_start, vocab_start + V/n) of the logits [N, V/n]; labels [N] index the full vocabulary.
// Every rank of the group gets the same f32 scalar (Reduction::None: each row's [N], 0 where
// ignored); backward gives each its columns' gradient.
Tensor vocab_parallel_cross_entropy(const Tensor& logits, const Tensor& labels, int64_t vocab_start,
                                    Communicator& group, int64_t ignore_index = -100,
                                    Reduction reduction = Reduction::Sum);

}  // namespace forge::parallel
