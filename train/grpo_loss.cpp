// GRPO's loss (see grpo_loss.h).
#include "train/grpo_loss.h"

#include <cmath>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"

namespace forge::train {

std::vector<float> group_advantages(const std::vector<float>& rewards, int64_t group, const std::string& scale,
                                    double batch_std, int64_t* flat_groups) {
  FORGE_CHECK(group >= 1 && rewards.size() % size_t(group) == 0, "group_advantages: ", rewards.size(),
              " rewards do not make groups of ", group);
  std::vector<float> out(rewards.size());
  int64_t flat = 0;
  for (size_t g = 0; g < rewards.size(); g += size_t(group)) {
    double mean = 0, var = 0;
    for (int64_t k = 0; k < group; ++k) mean += rewards[g + size_t(k)];
    mean /= double(group);
    for (int64_t k = 0; k < group; ++k) var += std::pow(rewards[g + size_t(k)] - mean, 2);
    const double sd = group > 1 ? std::sqrt(var / double(group - 1)) : 0.0;
    bool same = true;
    for (int64_t k = 0; k < group; ++k) {
      same &= rewards[g + size_t(k)] == rewards[g];
      const double a = rewards[g + size_t(k)] - mean;
      out[g + size_t(k)] = float(scale == "group" ? a / (sd + 1e-4) : scale == "batch" ? a / (batch_std + 1e-4) : a);
    }
    flat += same;
  }
  if (flat_groups) *flat_groups = flat;
  return out;
}

double grpo_units(const GrpoOptions& o, int64_t rows, int64_t tokens) {
  if (o.loss_type == "dapo") return double(tokens);
  return o.loss_type == "dr_grpo" ? double(rows * o.max_completion_length) : double(rows);
}

GrpoSums grpo_sums(const Tensor& lp, const Tensor& old, const Tensor& ref, const Tensor& mask, const Tensor& advantages,
                   const GrpoOptions& o) {
  const int64_t B = lp.size(0);
  const Device dev = lp.device();
  auto scalar = [dev](double v) { return Tensor::scalar(v, DType::F32, dev); };
  const Tensor A = advantages.reshape({B, 1});
  const Tensor ratio = exp(sub(lp, old));
  const Tensor clipped = maximum(minimum(ratio, scalar(1.0 + o.epsilon_high)), scalar(1.0 - o.epsilon));
  Tensor per_token = neg(minimum(mul(ratio, A), mul(clipped, A)));
  Tensor kl;
  if (o.beta > 0) {
    const Tensor d = sub(ref, lp);
    kl = add(sub(exp(d), d), -1.0);
    per_token = add(per_token, mul(kl, o.beta));
  }
  per_token = mul(per_token, mask);
  GrpoSums s;
  NoGradGuard ng;
  const Tensor lengths = sum(mask, {1});  // [B]
  s.tokens = sum(lengths);
  {
    EnableGradGuard eg;
    if (o.loss_type == "grpo") s.loss = sum(div(sum(per_token, {1}), maximum(lengths, scalar(1.0))));
    else s.loss = sum(per_token);
  }
  if (kl.defined()) s.kl = sum(mul(kl.detach(), mask));
  // TRL's clip region: the ratio below 1 - epsilon with A < 0, or above 1 + epsilon_high with A > 0.
  const Tensor r = ratio.detach();
  const Tensor zero = scalar(0.0);
  const Tensor low = mul(lt(r, scalar(1.0 - o.epsilon)).to(DType::F32), lt(A, zero).to(DType::F32));
  const Tensor high = mul(gt(r, scalar(1.0 + o.epsilon_high)).to(DType::F32), gt(A, zero).to(DType::F32));
  s.clipped = sum(mul(add(low, high), mask));
  return s;
}

}  // namespace forge::train
