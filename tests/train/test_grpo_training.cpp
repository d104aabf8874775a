// GRPO through the trainer: rollouts from the engine over the live weights, the loss against them,
// learning a verifiable reward, exact resume, and bad input named.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_util.h"
#include "core/safetensors.h"
#include "tests/support/test_util.h"
#include "train/checkpoint.h"
#include "train/recipe.h"
#include "train/trainer.h"

namespace forge {
namespace {

using json = nlohmann::json;

class GrpoTraining : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir = forge::testing::fresh_temp_dir("grpo_training");
    forge::testing::make_tiny_model_dir(dir + "/model");
    std::ofstream train(dir + "/prompts.jsonl"), eval(dir + "/eval.jsonl");
    for (int i = 0; i < 24; ++i) {  // text and chat prompts, with the field a reward could read
      const json row = i % 2 ? json{{"prompt", "Write a number after " + std::to_string(i) + ":"}, {"answer", i + 1}}
                             : json{{"prompt", {{{"role", "user"}, {"content", "Count on from " + std::to_string(i)}}}},
                                    {"answer", i + 1}};
      (i < 16 ? train : eval) << row.dump() << "\n";
    }
  }
  train::Recipe recipe(const std::string& out, const std::string& peft) const {
    train::Recipe r;
    r.model.path = dir + "/model";
    r.data.path = dir + "/prompts.jsonl";
    r.data.eval_path = dir + "/eval.jsonl";
    r.output.dir = dir + "/" + out;
    r.logging.progress = false;
    r.train.method = "grpo";
    r.train.batch_size = 4;
    r.train.max_steps = 30;
    r.train.seed = 3;
    r.peft.method = peft;
    r.peft.target_modules = {"all-linear"};
    r.optim.lr = peft == "none" ? 1e-3 : 1e-2;
    r.grpo.num_generations = 6;
    r.grpo.max_completion_length = 8;
    r.grpo.max_prompt_len = 48;
    r.grpo.beta = 0.05;
    r.grpo.rewards = R"([{"type": "regex", "pattern": "[0-9]", "name": "digit"}])";
    r.grpo.samples_every = 5;
    r.logging.eval_on_start = true;
    return r;
  }
  static std::vector<json> lines(const std::string& path) {
    std::vector<json> out;
    std::ifstream f(path);
    for (std::string line; std::getline(f, line);) out.push_back(json::parse(line));
    return out;
  }
  static std::vector<json> steps(const std::vector<json>& log) {
    std::vector<json> out;
    for (const json& l : log)
      if (l.contains("loss")) out.push_back(l);
    return out;
  }
  static std::string dir;
};
std::string GrpoTraining::dir;

// The first step trains on rollouts that the engine sampled from the same weights, with the
// log-probabilities it sampled them with: the ratio to the rollout policy is 1 within f32 rounding
// (no token clipped, a loss of 0 since a group's advantages sum to 0) and the reference (adapters
// off, or the frozen copy) equals the policy (a KL of 0). Then the policy learns to write digits:
// the held-out prompts' reward rises from where it started.
TEST_F(GrpoTraining, RolloutsMatchTheTrainerAndTheRewardRises) {
  for (const char* peft : {"lora", "none", "qlora"}) {
    train::Recipe r = recipe(std::string("run_") + peft, peft);
    train::run_training(r);
    const auto log = lines(r.output.dir + "/metrics.jsonl");
    const auto st = steps(log);
    ASSERT_EQ(st.size(), 30u) << peft;
    EXPECT_LT(std::abs(st[0].at("loss").get<double>()), 1e-5) << peft << " " << st[0].dump();
    EXPECT_EQ(st[0].at("clip_ratio").get<double>(), 0.0) << peft;
    EXPECT_LT(st[0].at("kl").get<double>(), 1e-9) << peft;
    for (const json& l : st)  // every step starts a batch: the engine's and the trainer's log-probs
      EXPECT_LT(l.at("sampling/sampling_logp_difference/max").get<double>(), 1e-4) << peft << " " << l.at("step");
    EXPECT_GT(st.back().at("kl").get<double>(), 1e-4) << peft << ": the policy moved away from the reference";
    for (const char* k : {"reward", "reward_std", "frac_reward_zero_std", "rewards/digit/mean", "rewards/digit/std",
                          "completions/mean_length", "completions/max_length", "completions/clipped_ratio",
                          "train_tokens_per_s", "gen_tokens_per_s", "gen_s"})
      EXPECT_TRUE(st[0].contains(k)) << k;
    ASSERT_TRUE(log.front().contains("eval_reward")) << log.front().dump();
    const double before = log.front().at("eval_reward").get<double>(), after = log.back().at("eval_reward").get<double>();
    EXPECT_GT(after, before + 0.15) << peft << ": held-out reward " << before << " -> " << after;
    double early = 0, late = 0;
    for (size_t i = 0; i < 5; ++i) {
      early += st[i].at("reward").get<double>();
      late += st[st.size() - 1 - i].at("reward").get<double>();
    }
    EXPECT_GT(late, early) << peft;
    const auto samples = lines(r.output.dir + "/samples.jsonl");
    ASSERT_EQ(samples.size(), 7u * 6u) << peft << ": the first group at steps 1, 5, 10, ..., 30";
    EXPECT_TRUE(samples[0].at("completion").is_string());
    EXPECT_TRUE(samples[0].at("rewards").contains("digit"));
    EXPECT_TRUE(file_exists(r.output.dir + "/reward_curve.svg"));
  }
}

// With two optimiser steps per batch of rollouts, the second step sees ratios away from 1: the
// loss is no longer 0 and tokens are clipped. Fresh rollouts after updates have ratios of 1
// again: the engine samples from the updated adapter, not a stale copy.
TEST_F(GrpoTraining, IterationsReuseRolloutsWithRatiosAwayFromOne) {
  train::Recipe r = recipe("iterations", "lora");
  r.grpo.iterations = 2;
  r.grpo.beta = 0;  // the loss is then the surrogate alone: 0 where the ratios are 1
  r.train.max_steps = 8;
  train::run_training(r);
  const auto st = steps(lines(r.output.dir + "/metrics.jsonl"));
  ASSERT_EQ(st.size(), 8u);
  double clipped = 0;
  for (size_t i = 0; i < st.size(); i += 2) {
    EXPECT_LT(std::abs(st[i].at("loss").get<double>()), 1e-5) << "fresh rollouts, step " << i + 1;
    EXPECT_EQ(st[i].at("clip_ratio").get<double>(), 0.0) << "fresh rollouts, step " << i + 1;
    EXPECT_EQ(st[i].at("reward"), st[i + 1].at("reward")) << "the same rollouts, steps " << i + 1 << " and " << i + 2;
    EXPECT_GT(std::abs(st[i + 1].at("loss").get<double>()), 1e-4) << "step " << i + 2;
    EXPECT_TRUE(st[i].contains("sampling/sampling_logp_difference/mean"));
    EXPECT_FALSE(st[i + 1].contains("sampling/sampling_logp_difference/mean")) << "not the sampling policy";
    clipped += st[i + 1].at("clip_ratio").get<double>();
  }
  EXPECT_GT(clipped, 0.0);
}

// A run stopped in the middle of a batch of rollouts (step 3 of 2 x 4) resumes with the rollouts
// from its checkpoint, samples the later batches with the same seeds from the same weights, and
// ends with the rewards, losses, samples and adapter of the run that was not stopped.
TEST_F(GrpoTraining, ResumedRunRepeatsRewardsAndLossesExactly) {
  train::Recipe r = recipe("resume", "lora");
  r.grpo.iterations = 2;
  r.train.max_steps = 8;
  r.checkpoint.every = 3;
  r.checkpoint.keep = 5;
  train::run_training(r);
  const auto full = lines(r.output.dir + "/metrics.jsonl"), samples = lines(r.output.dir + "/samples.jsonl");
  auto ck = train::list_checkpoints(r.output.dir + "/checkpoints");
  ASSERT_EQ(ck.size(), 3u);  // steps 8, 6, 3
  const std::string adapter = r.output.dir + "/adapter/adapter_model.safetensors";
  std::map<std::string, std::vector<float>> w;
  {
    SafetensorsFile before(adapter);
    for (auto& n : before.names()) w[n] = before.tensor(n).to_float_vector();
  }
  std::filesystem::remove(ck[0]);
  std::filesystem::remove(ck[1]);
  const train::TrainSummary resumed = train::run_training(r);
  EXPECT_EQ(resumed.start_step, 3);
  const auto again = lines(r.output.dir + "/metrics.jsonl");
  ASSERT_EQ(again.size(), full.size());
  for (size_t i = 0; i < full.size(); ++i)
    for (const char* k : {"loss", "grad_norm", "reward", "reward_std", "kl", "clip_ratio", "completions/mean_length",
                          "eval_reward"})
      if (full[i].contains(k)) {
        EXPECT_EQ(again[i].at(k), full[i].at(k)) << "line " << i << " " << k;
      }
  EXPECT_EQ(lines(r.output.dir + "/samples.jsonl"), samples) << "the same completions, written once";
  SafetensorsFile after(adapter);
  for (auto& n : after.names()) EXPECT_EQ(after.tensor(n).to_float_vector(), w.at(n)) << n;
}

std::string error_of(const train::Recipe& r) {
  try {
    train::run_training(r);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// A reward that is not a number, a reward program that fails, and prompts that are not prompts
// stop the run with the prompt or the line named.
TEST_F(GrpoTraining, BadRewardsAndPromptsAreNamed) {
  train::Recipe r = recipe("bad", "lora");
  r.train.max_steps = 2;
  r.grpo.rewards = R"([{"type": "command", "command": "while read -r l; do echo nan; done"}])";
  auto names_a_prompt = [](const std::string& e) {
    return e.find("Count on from") != std::string::npos || e.find("Write a number after") != std::string::npos;
  };
  std::string e = error_of(r);
  EXPECT_TRUE(names_a_prompt(e)) << e;
  EXPECT_NE(e.find("nan"), std::string::npos) << e;

  r.grpo.rewards = R"([{"type": "command", "command": "exit 3"}])";
  e = error_of(r);
  EXPECT_NE(e.find("exit 3"), std::string::npos) << e;
  EXPECT_TRUE(names_a_prompt(e)) << e;

  r.grpo.rewards = R"([{"type": "contains", "field": "missing"}])";
  e = error_of(r);
  EXPECT_NE(e.find("no field 'missing'"), std::string::npos) << e;

  std::ofstream(dir + "/not_prompts.jsonl") << R"({"prompt": "a"})" << "\n" << R"({"question": "b"})" << "\n";
  r = recipe("bad2", "lora");
  r.data.path = dir + "/not_prompts.jsonl";
  e = error_of(r);
  EXPECT_NE(e.find("not_prompts.jsonl:2"), std::string::npos) << e;
}

// Recipe keys: GRPO needs rewards, a whole model per rank, and prompts.
TEST(GrpoRecipe, RefusesWhatCannotWorkNamingTheKey) {
  const std::string dir = forge::testing::fresh_temp_dir("grpo_recipe");
  forge::testing::make_tiny_model_dir(dir + "/model");
  std::ofstream(dir + "/p.jsonl") << R"({"prompt": "a"})" << "\n";
  const std::string base = "model: {path: " + dir + "/model}\ndata: {path: " + dir +
                           "/p.jsonl}\noutput: {dir: " + dir + "/out}\ntrain: {method: grpo}\n";
  auto err = [&](const std::string& extra, const std::vector<std::string>& over = {}) {
    try {
      train::parse_recipe(base + extra, "g.yaml", over);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(err("").find("grpo.rewards"), std::string::npos) << err("");
  const std::string ok = "grpo:\n  rewards:\n    - {type: exact, field: answer}\n";
  EXPECT_EQ(err(ok), "(no error)");
  EXPECT_NE(err("grpo:\n  rewards:\n    - {type: exakt}\n").find("g.yaml:6: key 'grpo.rewards'"), std::string::npos)
      << err("grpo:\n  rewards:\n    - {type: exakt}\n");
  EXPECT_NE(err("grpo:\n  rewards:\n    - {type: exakt}\n").find("unknown reward type 'exakt'"), std::string::npos);
  EXPECT_NE(err(ok, {"parallel.tp=2"}).find("tp and pp must be 1"), std::string::npos);
  EXPECT_NE(err(ok, {"parallel.zero=3", "parallel.dp=2"}).find("ZeRO-3"), std::string::npos);
  EXPECT_NE(err(ok, {"grpo.num_generations=1"}).find("grpo.num_generations"), std::string::npos);
  EXPECT_NE(err(ok, {"grpo.rewards=exact"}).find("expected a list of mappings"), std::string::npos);
  // The list survives the round trip through the saved recipe.yaml.
  const train::Recipe r = train::parse_recipe(base + ok, "g.yaml");
  const train::Recipe back = train::parse_recipe(train::recipe_to_yaml(r), "recipe.yaml");
  EXPECT_EQ(json::parse(back.grpo.rewards), json::parse(R"([{"type": "exact", "field": "answer"}])"));
}

}  // namespace
}  // namespace forge
