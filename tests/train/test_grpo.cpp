// GRPO's loss against the PyTorch oracle (tests/reference/grpo_reference.py): on fixed rollouts
// sampled by one adapter and trained with another that has since moved (ratios away from 1,
// clipping active), the loss, its KL and clip ratio, and every lora_A / lora_B gradient match TRL's
// formulas for each loss type; group advantages as TRL normalises them.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "core/autograd.h"
#include "core/hdf5_io.h"
#include "models/pretrained.h"
#include "parallel/comm.h"
#include "parallel/model_parallel.h"
#include "peft/adapter_io.h"
#include "tests/support/test_util.h"
#include "train/grpo_loss.h"

using namespace forge;
using forge::testing::rel_error;

namespace {
std::string ref_dir() { return forge::testing::train_reference_dir("grpo_reference"); }

struct Case {
  const char* name;
  train::GrpoOptions opts;
  bool scale;
};

class GrpoParity : public ::testing::TestWithParam<Case> {};

// Token log-probabilities of the reference's rows under `model` (as the trainer computes them).
Tensor token_logps(models::CausalLM& model, const parallel::ModelParallel& mp, const Tensor& ids, const Tensor& labels) {
  return mp.token_logps(model.run_layers(model.embed(ids), 0, model.config().num_hidden_layers,
                                         model.positions_for(ids, {}), {}),
                        labels);
}

TEST_P(GrpoParity, LossClipRatioKlAndGradientsMatchPyTorch) {
  if (ref_dir().empty()) GTEST_SKIP() << "FORGE_OPTIM_REFERENCE is not set (run through ctest)";
  const Case c = GetParam();
  auto ref = load_hdf5(ref_dir() + "/grpo_reference.h5");
  const std::string g = std::string(c.name) + "/";
  parallel::Mesh mesh(parallel::world(), {1, 1, 1});
  auto rollout_model = models::load_model(ref_dir() + "/base", DType::F32);
  peft::LoraModel rollout = peft::load_adapter(*rollout_model, ref_dir() + "/adapter_rollout");
  parallel::ModelParallel rollout_mp(mesh, *rollout_model, &rollout);
  auto model = models::load_model(ref_dir() + "/base", DType::F32);
  peft::LoraModel lora = peft::load_adapter(*model, ref_dir() + "/adapter_current");
  parallel::ModelParallel mp(mesh, *model, &lora);
  const Tensor ids = ref.at("ids"), labels = ref.at("labels");

  Tensor old, reference;
  {
    NoGradGuard ng;
    old = token_logps(*rollout_model, rollout_mp, ids, labels);
    lora.set_enabled(false);  // the reference: the base alone
    reference = token_logps(*model, mp, ids, labels);
    lora.set_enabled(true);
  }
  const std::vector<float> adv = train::group_advantages(ref.at("rewards").to_float_vector(), 3, c.scale);
  EXPECT_LE(rel_error(Tensor::from_vector(adv, {6}), ref.at(g + "advantages")), 1e-6);
  const Tensor mask = ne(labels, Tensor::scalar(-100.0, DType::I64)).to(DType::F32);
  const Tensor lp = token_logps(*model, mp, ids, labels);
  train::GrpoSums s = train::grpo_sums(lp, old, reference, mask, Tensor::from_vector(adv, {6}), c.opts);
  const Tensor loss = mul(s.loss, 1.0 / s.units);
  EXPECT_NEAR(loss.item(), ref.at(g + "loss").item(), 2e-5 * std::max(1.0, std::abs(ref.at(g + "loss").item())));
  const double tokens = s.tokens.item();
  EXPECT_NEAR(s.clipped.item() / tokens, ref.at(g + "clip_ratio").item(), 1e-6);
  EXPECT_GT(s.clipped.item(), 0) << "clipping must be active in this test";
  if (c.opts.beta > 0) EXPECT_NEAR(s.kl.item() / tokens, ref.at(g + "kl").item(), 1e-5);
  loss.backward();
  EXPECT_EQ(forge::testing::expect_lora_grads(lora, ref, g, 1e-4), 28);
}

train::GrpoOptions opts(const char* type, double eps, double eps_high, double beta) {
  train::GrpoOptions o;
  o.loss_type = type;
  o.epsilon = eps;
  o.epsilon_high = eps_high;
  o.beta = beta;
  o.max_completion_length = 16;
  return o;
}

INSTANTIATE_TEST_SUITE_P(LossTypes, GrpoParity,
                         ::testing::Values(Case{"grpo", opts("grpo", 0.1, 0.1, 0.04), true},
                                           Case{"dapo", opts("dapo", 0.1, 0.15, 0.0), true},
                                           Case{"dr_grpo", opts("dr_grpo", 0.1, 0.1, 0.04), false}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(GroupAdvantages, CountsFlatGroupsAndLeavesThemAtZero) {
  int64_t flat = -1;
  const std::vector<float> a = train::group_advantages({1, 1, 1, 0, 2, 4}, 3, true, &flat);
  EXPECT_EQ(flat, 1);
  for (int k = 0; k < 3; ++k) EXPECT_EQ(a[size_t(k)], 0.0f);
  EXPECT_NEAR(a[3], -2.0 / (2.0 + 1e-4), 1e-6);  // mean 2, unbiased std 2
  EXPECT_NEAR(a[5], 2.0 / (2.0 + 1e-4), 1e-6);
}

}  // namespace
