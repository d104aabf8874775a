// GRPO's loss on sampled completions, as TRL's GRPOTrainer computes it. Per completion token t of
// completion i, with the policy's log-probability lp, the rollout policy's old (what sampled it)
// and the reference's ref:
//   ratio = exp(lp - old),  clipped = clamp(ratio, 1 - epsilon, 1 + epsilon_high)
//   l_t = -min(ratio A_i, clipped A_i) + beta (exp(ref - lp) - (ref - lp) - 1)
// and the loss by loss_type:
//   grpo:    mean over completions of the mean over their tokens      (sequence-mean)
//   dapo:    sum over all tokens / number of tokens                    (token-mean)
//   dr_grpo: sum over all tokens / (completions x max_completion_len)  (constant normaliser)
// Each is a sum over micro-batches divided by a count (GrpoSums::units), so gradient accumulation
// and data parallelism give the loss of the whole batch.
#pragma once
#include <string>
#include <vector>

#include "core/tensor.h"

namespace forge::train {

struct GrpoOptions {
  std::string loss_type = "grpo";  // grpo | dapo | dr_grpo
  double epsilon = 0.2, epsilon_high = 0.2, beta = 0.0;
  int64_t max_completion_length = 256;  // dr_grpo's normaliser
};

// Group-normalised advantages of rewards laid out in groups of `group` completions of one prompt:
// r - mean(group), divided by std + 1e-4 where std is, by `scale`: "group" the group's (GRPO),
// "batch" batch_std (the whole batch's, TRL's scale_rewards="batch"), "none" nothing (Dr. GRPO,
// no division). Stds are the unbiased ones, as torch.std. Also counts the groups whose rewards are
// all equal.
std::vector<float> group_advantages(const std::vector<float>& rewards, int64_t group, const std::string& scale,
                                    double batch_std = 0, int64_t* flat_groups = nullptr);
// The loss's denominator for a micro-batch of `rows` completions holding `tokens` completion
// tokens: rows (grpo), tokens (dapo) or rows x max_completion_length (dr_grpo).
double grpo_units(const GrpoOptions& o, int64_t rows, int64_t tokens);

struct GrpoSums {
  Tensor loss;       // differentiable: this micro-batch's part of the numerator (grpo_units: its denominator)
  Tensor kl;         // detached sums over completion tokens: the KL term (beta > 0, else undefined),
  Tensor clipped;    //   tokens whose ratio was clipped (TRL's clip_ratio region), and
  Tensor tokens;     //   completion tokens
};

// lp, old, ref: [B, T] f32 token log-probabilities (ref undefined when beta is 0); mask: [B, T]
// f32, 1 on completion tokens; advantages: [B].
GrpoSums grpo_sums(const Tensor& lp, const Tensor& old, const Tensor& ref, const Tensor& mask, const Tensor& advantages,
                   const GrpoOptions& o);

}  // namespace forge::train
