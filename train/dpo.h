// Direct preference optimisation and its variants (train.method: dpo), as TRL computes them.
// Rows come in pairs, chosen then rejected (data/preference.h); a row's log-probability is the sum
// over its reply's tokens (the mean for ipo and simpo). With
//   logits = (policy_chosen - policy_rejected) - (ref_chosen - ref_rejected)
// a pair's loss is
//   sigmoid: -(1 - ls) log sigmoid(beta logits) - ls log sigmoid(-beta logits)   (ls: label smoothing, cDPO)
//   hinge:   max(0, 1 - beta logits)
//   ipo:     (logits - 1 / (2 beta))^2
//   simpo:   the sigmoid loss with logits = policy_chosen - policy_rejected - gamma / beta (no reference)
// plus, with rpo_alpha > 0 (RPO), rpo_alpha times the chosen reply's negative log-likelihood per
// token (TRL takes the mean over the batch's chosen tokens; here over each pair's, the same when
// replies have equal lengths, and independent of how pairs fall into micro-batches and ranks),
// and the rewards are beta (policy - ref) per side (beta policy for simpo). The reference is the
// base with the adapter switched off (LoRA, QLoRA) or a frozen copy of the starting weights (full
// finetune).
#pragma once
#include <memory>
#include <string>

#include "core/tensor.h"
#include "train/method.h"

namespace forge::train {

struct DpoOptions {
  std::string loss_type = "sigmoid";  // sigmoid | hinge | ipo | simpo
  double beta = 0.1, label_smoothing = 0.0, simpo_gamma = 0.5, rpo_alpha = 0.0;
};

struct DpoTerms {
  Tensor losses;                             // [P] per pair, differentiable
  Tensor chosen_rewards, rejected_rewards;   // [P], detached
  Tensor chosen_logps, rejected_logps;       // [P], detached
};

// policy, ref: [2P] f32 log-probabilities of the rows, chosen and rejected alternating (ref undefined
// for simpo), already length-normalised where the loss type asks for it; lengths: [2P] reply
// tokens per row (needed for rpo_alpha > 0 with a sum loss type).
DpoTerms dpo_terms(const Tensor& policy, const Tensor& ref, const DpoOptions& o, const Tensor& lengths = Tensor());

// Sum (ipo, simpo: mean) of each row's target log-probabilities, as the loss type takes them.
bool dpo_length_normalised(const std::string& loss_type);

std::unique_ptr<Method> make_dpo(const MethodContext& ctx);

}  // namespace forge::train
