// GRPO's rollouts: completions of prompts sampled by the serving engine, scored by the reward
// functions, laid out as training rows, and kept in checkpoints (train/grpo.h puts them together).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "data/packing.h"
#include "data/prompts.h"
#include "infer/engine.h"
#include "train/rewards.h"

namespace forge::train {

struct Rollout {
  int64_t prompt = 0;            // index into the prompt list
  std::vector<int64_t> tokens;   // the completion, with its end-of-sequence token when one was drawn
  std::vector<float> logps;      // the engine's log-probability of each, at the sampling temperature
  std::string text;              // (not kept in checkpoints)
  bool truncated = false;        // ended by the length limit
  std::vector<float> rewards;    // one per reward function
  float reward = 0, advantage = 0;
};

// One batch of rollouts on this rank: groups of completions, prompt by prompt.
struct RolloutBatch {
  int64_t index = -1;  // which batch of the run (-1: none yet)
  std::vector<Rollout> rollouts;
  double gen_seconds = 0;
  int64_t flat_groups = 0;  // groups whose rewards are all equal (no advantage, no gradient)
};

struct SampleOptions {
  int64_t n = 1;                // completions per prompt
  int64_t max_tokens = 256;     // per completion (less where the context ends first)
  double temperature = 1.0;     // 0: greedy
  uint64_t seed = 0;            // with the batch index, prompt and completion number: each request's seed
  int64_t batch_index = 0;
};

// Samples o.n completions of each prompt in `which` (indices into prompts) on the engine, which
// must be idle; its prefix cache is reset first (the weights may have changed since it last ran).
std::vector<Rollout> sample_rollouts(infer::Engine& engine, const std::vector<data::Prompt>& prompts,
                                     const std::vector<int64_t>& which, const SampleOptions& o);

// Each function's rewards, and their weighted sum, into the rollouts. A function that fails, or a
// reward that is not a finite number, is an error naming the prompt. rows: prompts' JSONL objects.
void score_rollouts(std::vector<Rollout>& rs, const std::vector<data::Prompt>& prompts,
                    const std::vector<nlohmann::json>& rows, const std::vector<std::unique_ptr<RewardFunction>>& fns);

// The rollouts as training rows (prompt then completion, the completion's tokens the targets), in
// up to n_mb micro-batches of consecutive rollouts; Batch::examples holds each row's rollout index.
std::vector<data::Batch> rollout_micro_batches(const RolloutBatch& b, const std::vector<data::Prompt>& prompts,
                                               int64_t n_mb);
// A value per completion token laid out as the rows' labels are ([B, T] f32, 0 elsewhere): the
// engine's log-probabilities of the micro-batch's rollouts.
Tensor rollout_logps(const RolloutBatch& b, const std::vector<data::Prompt>& prompts, const data::Batch& mb);

// A batch as checkpoint tensors, and back (num_rewards: the reward functions' count).
std::map<std::string, Tensor> rollouts_state(const RolloutBatch& b);
RolloutBatch rollouts_from_state(const std::map<std::string, Tensor>& state, size_t num_rewards);

}  // namespace forge::train
