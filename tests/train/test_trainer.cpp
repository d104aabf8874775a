// The trainer end to end on a tiny model: gradient accumulation and packing leave the optimiser
// step unchanged, a resumed run repeats the uninterrupted run's losses exactly, loss falls.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/file_util.h"
#include "core/safetensors.h"
#include "tests/support/test_util.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

using namespace forge;
namespace fs = std::filesystem;

namespace {
struct TrainerFixture : ::testing::Test {
  std::string dir;
  void SetUp() override {
    dir = forge::testing::fresh_temp_dir("trainer");
    forge::testing::make_tiny_model_dir(dir + "/model");
    std::ofstream f(dir + "/data.jsonl"), f8(dir + "/data8.jsonl");
    const char* words[] = {"red", "green", "blue", "cat", "dog", "sun", "moon", "tree"};
    for (int i = 0; i < 16; ++i) {  // chat rows of different lengths
      std::string q = "Say " + std::string(words[i % 8]), a;
      for (int k = 0; k <= i % 5; ++k) a += std::string(words[(i + k) % 8]) + " ";
      const std::string line =
          nlohmann::json{{"messages", {{{"role", "user"}, {"content", q}}, {{"role", "assistant"}, {"content", a}}}}}.dump();
      f << line << "\n";
      if (i < 8) f8 << line << "\n";
    }
  }
  train::Recipe recipe(const std::string& out) const {
    train::Recipe r;
    r.model.path = dir + "/model";
    r.data.path = dir + "/data.jsonl";
    r.data.max_seq_len = 64;
    r.output.dir = dir + "/" + out;
    r.logging.progress = false;
    return r;
  }
  static std::map<std::string, std::vector<float>> weights(const std::string& file) {
    SafetensorsFile st(file);
    std::map<std::string, std::vector<float>> out;
    for (auto& n : st.names()) out[n] = st.tensor(n).to_float_vector();
    return out;
  }
  static std::vector<double> losses(const std::string& metrics) {
    std::vector<double> out;
    std::ifstream f(metrics);
    for (std::string line; std::getline(f, line);) {
      auto j = nlohmann::json::parse(line);
      if (j.contains("loss")) out.push_back(j["loss"]);
    }
    return out;
  }
};

// One SGD step (no clipping, no momentum): equal weights after it mean equal gradients.
TEST_F(TrainerFixture, AccumulationAndPackingGiveTheSameStep) {
  struct Layout {
    const char* name;
    int64_t batch, accum;
    bool packing;
  };
  std::map<std::string, std::vector<float>> first;
  for (Layout l : {Layout{"b8x1", 8, 1, false}, Layout{"b2x4", 2, 4, false}, Layout{"b1x8", 1, 8, false},
                   Layout{"packed", 1, 1, true}}) {
    train::Recipe r = recipe(l.name);
    r.peft.method = "none";
    r.optim.name = "sgd";
    r.optim.lr = 0.5;
    r.schedule.name = "constant";
    r.train.max_grad_norm = 0;
    r.train.batch_size = l.batch;
    r.train.grad_accum = l.accum;
    r.train.max_steps = 1;
    r.data.packing = l.packing;
    r.data.path = dir + "/data8.jsonl";
    r.data.max_seq_len = l.packing ? 2048 : 128;  // packed: all 8 examples share one row
    r.data.shuffle = false;
    r.data.cache = false;
    train::run_training(r);
    auto w = weights(r.output.dir + "/model/model.safetensors");
    if (first.empty()) {
      first = w;
      continue;
    }
    double worst = 0;
    for (auto& [n, v] : w) worst = std::max(worst, forge::testing::rel_error(v, first.at(n)));
    EXPECT_LE(worst, 2e-6) << l.name << " differs from 8 x 1";
  }
}

// Recomputing each layer in backward must not change the gradients.
TEST_F(TrainerFixture, ActivationCheckpointingGivesTheSameStep) {
  std::map<std::string, std::vector<float>> plain;
  for (bool ckpt : {false, true}) {
    train::Recipe r = recipe(ckpt ? "ckpt" : "plain");
    r.peft.method = "none";
    r.optim.name = "sgd";
    r.optim.lr = 0.5;
    r.schedule.name = "constant";
    r.train.max_grad_norm = 0;
    r.train.batch_size = 4;
    r.train.max_steps = 1;
    r.train.activation_checkpointing = ckpt;
    train::run_training(r);
    auto w = weights(r.output.dir + "/model/model.safetensors");
    if (!ckpt) {
      plain = w;
      continue;
    }
    for (auto& [n, v] : w) EXPECT_LE(forge::testing::rel_error(v, plain.at(n)), 1e-6) << n;
  }
}

// bf16 weights with f32 masters (full) and f32 adapters on a bf16 base (LoRA) both learn.
TEST_F(TrainerFixture, Bf16MixedPrecisionLearns) {
  for (const char* method : {"none", "lora"}) {
    train::Recipe r = recipe(std::string("bf16_") + method);
    r.model.dtype = "bf16";
    r.peft.method = method;
    r.peft.target_modules = {"all-linear"};
    r.optim.lr = std::string(method) == "none" ? 3e-3 : 1e-2;
    r.train.epochs = 8;
    r.train.batch_size = 4;
    train::TrainSummary s = train::run_training(r);
    EXPECT_LT(s.last_loss, 0.6 * s.first_loss) << method;
    if (std::string(method) == "none") {
      SafetensorsFile st(r.output.dir + "/model/model.safetensors");
      EXPECT_EQ(st.entry("model.norm.weight").dtype, DType::BF16) << "the model keeps its bf16 dtype";
    }
  }
}

TEST_F(TrainerFixture, ResumedRunRepeatsTheLossesExactly) {
  train::Recipe r = recipe("run");
  r.peft.dropout = 0.1;  // the dropout RNG must be restored too
  r.peft.target_modules = {"all-linear"};
  r.train.batch_size = 2;
  r.train.grad_accum = 2;
  r.train.max_steps = 6;
  r.checkpoint.every = 2;
  r.checkpoint.keep = 5;
  r.optim.lr = 1e-2;
  r.schedule.warmup_steps = 2;
  train::TrainSummary s = train::run_training(r);
  EXPECT_EQ(s.steps, 6);
  const std::vector<double> full = losses(r.output.dir + "/metrics.jsonl");
  ASSERT_EQ(full.size(), 6u);
  auto ck = train::list_checkpoints(r.output.dir + "/checkpoints");
  ASSERT_EQ(ck.size(), 3u);  // steps 6, 4, 2
  const auto adapter = weights(r.output.dir + "/adapter/adapter_model.safetensors");

  // Lose the last checkpoint (and corrupt the one before, which must be skipped): resume from 2.
  fs::remove(ck[0]);
  fs::resize_file(ck[1], fs::file_size(ck[1]) / 3);
  train::TrainSummary resumed = train::run_training(r);
  EXPECT_EQ(resumed.start_step, 2);
  const std::vector<double> again = losses(r.output.dir + "/metrics.jsonl");
  ASSERT_EQ(again.size(), 6u);
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(again[i], full[i]) << "step " << i + 1;
  for (auto& [n, v] : weights(r.output.dir + "/adapter/adapter_model.safetensors"))
    EXPECT_EQ(v, adapter.at(n)) << n;
  EXPECT_LT(full.back(), full.front());
}

TEST_F(TrainerFixture, FullFinetuneAndLoraLossFalls) {
  for (const char* method : {"none", "lora"}) {
    train::Recipe r = recipe(std::string("fall_") + method);
    r.peft.method = method;
    r.peft.target_modules = {"all-linear"};
    r.optim.lr = std::string(method) == "none" ? 3e-3 : 1e-2;
    r.train.epochs = 8;
    r.train.batch_size = 4;
    r.data.eval_fraction = 0.25;
    r.logging.eval_every = 8;
    train::TrainSummary s = train::run_training(r);
    EXPECT_LT(s.last_loss, 0.6 * s.first_loss) << method;
    EXPECT_TRUE(std::isfinite(s.eval_loss)) << method;
    EXPECT_TRUE(file_exists(r.output.dir + "/loss_curve.svg"));
    EXPECT_TRUE(file_exists(r.output.dir + "/recipe.yaml"));
    EXPECT_TRUE(file_exists(r.output.dir + (std::string(method) == "none" ? "/model/config.json" : "/adapter/adapter_config.json")));
  }
}

}  // namespace
