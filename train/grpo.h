// Group relative policy optimisation (train.method: grpo) with the serving engine inside the
// trainer. Each batch of rollouts: this rank's train.batch_size prompts (data/prompts.h; a seeded
// new order each epoch) get grpo.num_generations completions each, sampled by infer::Engine over
// the very weights being trained (LoRA adapters read live; a full finetune's updated tensors),
// with prefix caching so a group shares its prompt's KV blocks, and with the log-probabilities of
// what was drawn at the sampling temperature: those are the rollout policy's ("old") values of
// the loss (train/grpo_loss.h), so nothing is recomputed and the engine and the trainer cannot
// drift apart. The rewards (train/rewards.h) are weighted and summed, advantages normalised per
// group, and the batch is trained on for grpo.iterations optimiser steps, split into
// train.grad_accum micro-batches. The KL term's reference (grpo.beta > 0) is the base with the
// adapters off, or a frozen copy for a full finetune.
//
// Sampling seeds depend on (train.seed, rollout batch, prompt, completion) only, and a checkpoint
// keeps the rollouts a step reuses, so a resumed run repeats the uninterrupted one. With
// data.eval_path, evaluation samples a group of completions of each held-out prompt as training
// does (the same seeds at every eval) and reports their mean reward. Every grpo.samples_every steps the first group of a rollout batch goes to
// output.dir/samples.jsonl; at the end reward_curve.svg is drawn beside loss_curve.svg.
#pragma once
#include <memory>

#include "train/method.h"

namespace forge::train {

std::unique_ptr<Method> make_grpo(const MethodContext& ctx);

}  // namespace forge::train
