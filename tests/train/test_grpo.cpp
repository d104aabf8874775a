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
#include "core/random.h"
#include "data/tokenizer.h"
#include "infer/engine.h"
#include "peft/lora.h"
#include "train/grpo_loss.h"

using namespace forge;
using forge::testing::rel_error;

namespace {
std::string ref_dir() { return forge::testing::train_reference_dir("grpo_reference"); }

struct Case {
  const char* name;
  train::GrpoOptions opts;
  const char* scale;  // group | none
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
  const Tensor loss = mul(s.loss, 1.0 / train::grpo_units(c.opts, 6, int64_t(sum(mask).item())));
  EXPECT_NEAR(loss.item(), ref.at(g + "loss").item(), 2e-5 * std::max(1.0, std::abs(ref.at(g + "loss").item())));
  const double tokens = s.tokens.item();
  EXPECT_NEAR(s.clipped.item() / tokens, ref.at(g + "clip_ratio").item(), 1e-6);
  EXPECT_GT(s.clipped.item(), 0) << "clipping must be active in this test";
  if (c.opts.beta > 0) {
    EXPECT_NEAR(s.kl.item() / tokens, ref.at(g + "kl").item(), 1e-5);
  }
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
                         ::testing::Values(Case{"grpo", opts("grpo", 0.1, 0.1, 0.04), "group"},
                                           Case{"dapo", opts("dapo", 0.1, 0.15, 0.0), "group"},
                                           Case{"dr_grpo", opts("dr_grpo", 0.1, 0.1, 0.04), "none"}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(GroupAdvantages, CountsFlatGroupsAndLeavesThemAtZero) {
  int64_t flat = -1;
  const std::vector<float> a = train::group_advantages({1, 1, 1, 0, 2, 4}, 3, "group", 0, &flat);
  EXPECT_EQ(flat, 1);
  for (int k = 0; k < 3; ++k) EXPECT_EQ(a[size_t(k)], 0.0f);
  EXPECT_NEAR(a[3], -2.0 / (2.0 + 1e-4), 1e-6);  // mean 2, unbiased std 2
  EXPECT_NEAR(a[5], 2.0 / (2.0 + 1e-4), 1e-6);
  // TRL's scale_rewards="batch": the group's mean, the whole batch's std (here 1.3784, unbiased).
  const double sd = std::sqrt(9.5 / 5);
  const std::vector<float> b = train::group_advantages({1, 1, 1, 0, 2, 4}, 3, "batch", sd);
  EXPECT_NEAR(b[3], -2.0 / (sd + 1e-4), 1e-6);
  EXPECT_EQ(b[4], 0.0f);
  const std::vector<float> n = train::group_advantages({1, 1, 1, 0, 2, 4}, 3, "none");
  EXPECT_EQ(n[3], -2.0f);
}

}  // namespace

namespace {
struct Rollout {
  std::vector<int64_t> prompt, tokens;
  std::vector<float> logprobs;  // the engine's, one per token
};

// GRPO's rollouts: five requests (three share a 12-token prompt; the first is computed before the
// others arrive, which then hit its cached blocks), of different lengths, sampled at temperature 0.7 with the logprobs of that distribution.
std::vector<Rollout> sample(infer::Engine& engine, const std::vector<int64_t>& shared, const std::vector<int64_t>& other) {
  std::vector<Rollout> out(5);
  for (int64_t k = 0; k < 5; ++k) {
    infer::Request r;
    r.prompt = k < 3 ? shared : other;
    r.max_tokens = 3 + 4 * k;
    r.ignore_eos = true;
    r.sampling.temperature = 0.7;
    r.seed = uint64_t(100 + k);
    r.logprobs = 0;
    r.logprob_temperature = 0.7;
    out[size_t(k)].prompt = r.prompt;
    engine.add(r, [&out, k](const infer::Event& ev) {
      Rollout& o = out[size_t(k)];
      o.tokens.insert(o.tokens.end(), ev.tokens.begin(), ev.tokens.end());
      for (auto& lp : ev.logprobs) o.logprobs.push_back(lp.logprob);
    });
    if (k == 0) engine.step();  // the first prompt's blocks are cached before the others arrive
  }
  engine.run_until_idle();
  return out;
}

// The trainer's log-probabilities of the same tokens (one padded batch, its own forward), minus the
// engine's: the largest difference.
double worst_gap(models::CausalLM& model, const parallel::ModelParallel& mp, const std::vector<Rollout>& rs) {
  NoGradGuard ng;
  int64_t T = 0;
  for (auto& r : rs) T = std::max<int64_t>(T, int64_t(r.prompt.size() + r.tokens.size()));
  const int64_t B = int64_t(rs.size());
  std::vector<int64_t> ids(size_t(B * T), 0), labels(size_t(B * T), -100), pos(size_t(B * T), 0);
  for (int64_t b = 0; b < B; ++b) {
    const Rollout& r = rs[size_t(b)];
    std::vector<int64_t> row = r.prompt;
    row.insert(row.end(), r.tokens.begin(), r.tokens.end());
    for (int64_t t = 0; t < int64_t(row.size()); ++t) {
      ids[size_t(b * T + t)] = row[size_t(t)];
      pos[size_t(b * T + t)] = t;
      if (t + 1 >= int64_t(r.prompt.size()) && t + 1 < int64_t(row.size())) labels[size_t(b * T + t)] = row[size_t(t + 1)];
    }
  }
  const Tensor id = Tensor::from_vector(ids, {B, T}), lab = Tensor::from_vector(labels, {B, T});
  models::ForwardOptions fo;
  fo.positions = Tensor::from_vector(pos, {B, T});
  const Tensor hidden = model.run_layers(model.embed(id), 0, model.config().num_hidden_layers, model.positions_for(id, fo), fo);
  const std::vector<float> lp = mp.token_logps(hidden, lab, 0.7).to_float_vector();
  double worst = 0;
  for (int64_t b = 0; b < B; ++b) {
    const Rollout& r = rs[size_t(b)];
    EXPECT_EQ(r.logprobs.size(), r.tokens.size());
    for (size_t i = 0; i < r.tokens.size(); ++i)
      worst = std::max(worst, std::abs(double(lp[size_t(b * T) + r.prompt.size() - 1 + i]) - r.logprobs[i]));
  }
  return worst;
}

// The engine samples from the very weights being trained: the log-probabilities it reports for the
// tokens it drew equal the trainer's forward on the same rows within 1e-5 (f32), with mixed
// lengths, prefix-cache hits and a LoRA adapter. After a training step changes the adapter, blocks
// cached under the old weights make the engine's numbers stale until its prefix cache is reset.
TEST(EngineAndTrainer, LogProbabilitiesAgreeOnTheLiveWeights) {
  const std::string dir = forge::testing::fresh_temp_dir("grpo_agree");
  forge::testing::make_tiny_model_dir(dir);
  auto model = models::load_model(dir, DType::F32);
  peft::LoraConfig lc;
  lc.r = 4;
  lc.alpha = 8;
  lc.target_modules = {"all-linear"};
  peft::LoraModel lora = peft::apply_lora(*model, lc, 3);
  lora.train(false);
  Generator gen(11);
  auto step = [&](double size) {  // stands in for an optimiser step on the adapter
    NoGradGuard ng;
    for (auto& [name, a] : lora.adapters) a->B.copy_(add(a->B, mul(randn(a->B.shape(), DType::F32, &gen), size)));
  };
  step(0.3);  // a trained adapter, not a fresh one (B = 0)
  parallel::Mesh mesh(parallel::world(), {1, 1, 1});
  parallel::ModelParallel mp(mesh, *model, &lora);
  infer::EngineConfig ec;
  ec.block_size = 4;
  ec.kv_cache_dtype = DType::F32;
  ec.kv_cache_bytes = 8 << 20;
  infer::Engine engine(model, data::Tokenizer::from_dir(dir), {}, ec);  // no eos: lengths as asked
  const std::vector<int64_t> shared = {5, 17, 33, 2, 90, 41, 7, 66, 12, 8, 150, 3}, other = {9, 200, 31, 4, 77};

  const auto first = sample(engine, shared, other);
  EXPECT_GT(engine.counters().prefix_hit_tokens, 0) << "the shared prompt's blocks must be reused";
  EXPECT_LE(worst_gap(*model, mp, first), 1e-5);

  step(0.2);
  const int64_t hits = engine.counters().prefix_hit_tokens;
  const auto stale = sample(engine, shared, other);
  EXPECT_GT(engine.counters().prefix_hit_tokens, hits);
  EXPECT_GT(worst_gap(*model, mp, stale), 1e-3) << "blocks cached under the old weights must show";

  engine.reset_prefix_cache();
  const auto fresh = sample(engine, shared, other);
  EXPECT_LE(worst_gap(*model, mp, fresh), 1e-5);

  infer::Request pending;  // a request in flight would go on caching blocks of the old weights
  pending.prompt = other;
  engine.add(pending, [](const infer::Event&) {});
  EXPECT_THROW(engine.reset_prefix_cache(), Error);
  engine.run_until_idle();
}
}  // namespace
