// DPO against the PyTorch oracle (tests/reference/dpo_reference.py): on a random Llama with a
// random LoRA adapter, the trainer's DPO method (reference = the base with the adapter off) gives
// TRL's loss, metrics and lora_A / lora_B gradients for every loss type; the pair loss itself on
// hand-made log-probabilities; and preference rows become pairs of examples.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "core/autograd.h"
#include "core/hdf5_io.h"
#include "data/dataset.h"
#include "data/preference.h"
#include "parallel/pipeline.h"
#include "models/pretrained.h"
#include "parallel/comm.h"
#include "peft/adapter_io.h"
#include "tests/support/test_util.h"
#include "train/dpo.h"
#include "train/checkpoint.h"
#include "train/trainer.h"
#include "core/file_util.h"
#include "core/safetensors.h"

using namespace forge;
using forge::testing::rel_error;

namespace {
std::string ref_dir() { return forge::testing::train_reference_dir("dpo_reference"); }

struct Case {
  const char* name;
  const char* loss_type;
  double beta, label_smoothing, gamma, rpo = 0.0;
};

class DpoParity : public ::testing::TestWithParam<Case> {};

TEST_P(DpoParity, LossMetricsAndGradientsMatchPyTorch) {
  if (ref_dir().empty()) GTEST_SKIP() << "FORGE_OPTIM_REFERENCE is not set (run through ctest)";
  const Case c = GetParam();
  auto ref = load_hdf5(ref_dir() + "/dpo_reference.h5");
  auto model = models::load_model(ref_dir() + "/base", DType::F32);
  peft::LoraModel lora = peft::load_adapter(*model, ref_dir() + "/adapter");
  parallel::Mesh mesh(parallel::world(), {1, 1, 1});
  parallel::ModelParallel mp(mesh, *model, &lora);
  train::Recipe r;
  r.train.method = "dpo";
  r.dpo.loss_type = c.loss_type;
  r.dpo.beta = c.beta;
  r.dpo.label_smoothing = c.label_smoothing;
  r.dpo.simpo_gamma = c.gamma;
  r.dpo.rpo_alpha = c.rpo;
  auto method = train::make_method(train::MethodContext{r, mesh, *model, mp, &lora, nullptr});
  ASSERT_EQ(method->group(), 2);

  data::Batch b;
  b.ids = ref.at("ids");
  b.labels = ref.at("labels");
  const int64_t B = b.ids.size(0), T = b.ids.size(1);
  std::vector<int64_t> pos;
  for (int64_t i = 0; i < B; ++i)
    for (int64_t t = 0; t < T; ++t) pos.push_back(t);
  b.positions = Tensor::from_vector(pos, {B, T});
  const std::vector<data::Batch> mbs{b};
  const double pairs = method->units(b);
  ASSERT_EQ(pairs, 3.0);

  method->before_pass(mbs, false);
  Tensor loss;
  const train::Head head = [&](const Tensor& h, const data::Batch& mb, int64_t i) { return method->loss_sum(h, mb, i); };
  parallel::run_pipeline(parallel::Schedule::GPipe, 1, mesh.pp(), train::make_stage(*model, mp, mbs, head, 1.0 / pairs, &loss));
  const std::string g = std::string(c.name) + "/";
  EXPECT_NEAR(loss.item() / pairs, ref.at(g + "loss").item(), 2e-5 * std::max(1.0, std::abs(ref.at(g + "loss").item())));
  nlohmann::json line;
  method->take_metrics(method->metric_sums().to_float_vector(), line, pairs, "");
  for (const char* m : {"rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen",
                        "logps/rejected"}) {
    std::string key = m;
    key[key.find('/')] = '_';
    const double want = ref.at(g + "metrics/" + key).item();
    EXPECT_NEAR(line.at(m).get<double>(), want, 1e-4 * std::max(1.0, std::abs(want))) << c.name << " " << m;
  }
  EXPECT_EQ(forge::testing::expect_lora_grads(lora, ref, g, 1e-4), 28);
  for (auto& p : model->parameters()) EXPECT_FALSE(p.grad().defined()) << "the base must stay frozen";
}

INSTANTIATE_TEST_SUITE_P(LossTypes, DpoParity,
                         ::testing::Values(Case{"sigmoid", "sigmoid", 0.5, 0.0, 0.5},
                                           Case{"sigmoid_smoothed", "sigmoid", 0.5, 0.2, 0.5},
                                           Case{"hinge", "hinge", 0.5, 0.0, 0.5}, Case{"ipo", "ipo", 0.5, 0.0, 0.5},
                                           Case{"simpo", "simpo", 2.0, 0.1, 0.3},
                                           Case{"sigmoid_rpo", "sigmoid", 0.5, 0.0, 0.5, 0.7},
                                           Case{"ipo_rpo", "ipo", 0.5, 0.0, 0.5, 0.7}),
                         [](const auto& info) { return std::string(info.param.name); });

// At equal policy and reference every pair's logits are 0: the sigmoid loss is log 2 and its
// gradient -beta / 2 on the chosen side, +beta / 2 on the rejected side (per pair, before the mean).
TEST(DpoTerms, EqualPolicyAndReferenceGiveLog2AndHalfBetaGradients) {
  Tensor policy = Tensor::from_vector(std::vector<float>{-3.0f, -5.0f, -2.5f, -1.5f}, {4}).requires_grad_(true);
  Tensor ref = policy.detach().clone();
  train::DpoOptions o;
  o.beta = 0.4;
  train::DpoTerms t = train::dpo_terms(policy, ref, o);
  const std::vector<float> l = t.losses.to_float_vector();
  ASSERT_EQ(l.size(), 2u);
  for (float v : l) EXPECT_NEAR(v, std::log(2.0), 1e-6);
  sum(t.losses).backward();
  const std::vector<float> g = policy.grad().to_float_vector();
  EXPECT_NEAR(g[0], -0.2, 1e-6);
  EXPECT_NEAR(g[1], 0.2, 1e-6);
  EXPECT_NEAR(g[2], -0.2, 1e-6);
  EXPECT_NEAR(g[3], 0.2, 1e-6);
  // Far apart, log sigmoid stays finite: a margin of -500 costs beta * 500 (no inf, no NaN).
  Tensor far = Tensor::from_vector(std::vector<float>{-600.0f, -100.0f}, {2});
  train::DpoTerms f = train::dpo_terms(far, Tensor::zeros({2}, DType::F32), o);
  EXPECT_NEAR(f.losses.item(), 0.4 * 500.0, 1e-3);
}

}  // namespace

namespace {
struct PreferenceData : ::testing::Test {
  std::string dir;
  std::shared_ptr<data::Tokenizer> tok;
  void SetUp() override {
    dir = forge::testing::fresh_temp_dir("preference");
    forge::testing::make_tiny_model_dir(dir + "/model");
    tok = data::Tokenizer::from_dir(dir + "/model");
  }
  data::ExampleSet read(const std::vector<std::string>& lines, data::DatasetStats* st = nullptr) {
    std::ofstream f(dir + "/p.jsonl");
    for (auto& l : lines) f << l << "\n";
    f.close();
    data::DatasetOptions o;
    o.max_seq_len = 256;
    return data::read_dataset(dir + "/p.jsonl", *tok, o, st);
  }
  // The text of example i's targets, and of the tokens before its first target.
  std::pair<std::string, std::string> split(const data::ExampleSet& s, int64_t i) const {
    std::vector<int64_t> prompt, reply;
    for (int64_t t = s.offsets[i]; t < s.offsets[i + 1]; ++t) (s.mask[t] ? reply : (reply.empty() ? prompt : reply)).push_back(s.tokens[t]);
    return {tok->decode(prompt), tok->decode(reply)};
  }
};

TEST_F(PreferenceData, EveryFormGivesChosenThenRejectedWithTheReplyAsTarget) {
  const std::string user = R"({"role": "user", "content": "Name a colour"})";
  data::DatasetStats st;
  data::ExampleSet s = read({R"({"prompt": "Name a colour:", "chosen": " red", "rejected": " loud"})",
                             R"({"prompt": [)" + user + R"(], "chosen": [{"role": "assistant", "content": "blue"}],)"
                             R"( "rejected": [{"role": "assistant", "content": "seven"}]})",
                             R"({"chosen": [)" + user + R"(, {"role": "assistant", "content": "green"}],)"
                             R"( "rejected": [)" + user + R"(, {"role": "assistant", "content": "fast"}]})"},
                            &st);
  EXPECT_EQ(st.format, "preference");
  ASSERT_EQ(s.size(), 6);
  const char* replies[] = {" red", " loud", "blue", "seven", "green", "fast"};
  for (int64_t i = 0; i < 6; ++i) {
    auto [prompt, reply] = split(s, i);
    EXPECT_EQ(reply.rfind(replies[i], 0), 0u) << i << ": '" << reply << "'";
    EXPECT_LE(reply.size(), std::string(replies[i]).size() + 12) << "the reply and its end of turn only: " << reply;
    if (i % 2) {
      EXPECT_EQ(prompt, split(s, i - 1).first) << "both sides share the prompt";
    }
  }
  EXPECT_NE(split(s, 2).first.find("Name a colour"), std::string::npos);
}

TEST_F(PreferenceData, AMissingOrEmptySideNamesTheLine) {
  auto error = [&](const std::string& line) {
    try {
      read({R"({"prompt": "a", "chosen": "b", "rejected": "c"})", line});
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error(R"({"prompt": "a", "chosen": "b", "rejected": null})").find("p.jsonl:2: missing 'rejected'"),
            std::string::npos);
  EXPECT_NE(error(R"({"prompt": "a", "chosen": "", "rejected": "c"})").find("p.jsonl:2: 'chosen' is empty"),
            std::string::npos);
  EXPECT_NE(error(R"({"prompt": [{"role": "user", "content": "a"}], "chosen": [{"role": "assistant", "content": ""}], "rejected": [{"role": "assistant", "content": "x"}]})")
                .find("p.jsonl:2: 'chosen' has an empty reply"),
            std::string::npos);
  EXPECT_NE(error(R"({"chosen": "b", "rejected": "c"})").find("p.jsonl:2: text preference rows need a string 'prompt'"),
            std::string::npos);
}
}  // namespace

namespace {
// forge train with train.method dpo on a tiny model: pairs whose chosen reply repeats the word
// asked for and whose rejected reply is another word.
struct DpoTraining : ::testing::Test {
  std::string dir;
  void SetUp() override {
    dir = forge::testing::fresh_temp_dir("dpo_training");
    forge::testing::make_tiny_model_dir(dir + "/model");
    std::ofstream f(dir + "/pairs.jsonl");
    const char* words[] = {"red", "green", "blue", "cat", "dog", "sun", "moon", "tree"};
    for (int i = 0; i < 24; ++i) {
      const std::string w = words[i % 8], other = words[(i * 3 + 1) % 8 == i % 8 ? (i + 1) % 8 : (i * 3 + 1) % 8];
      f << nlohmann::json{{"prompt", {{{"role", "user"}, {"content", "Say " + w}}}},
                          {"chosen", {{{"role", "assistant"}, {"content", w + " " + w}}}},
                          {"rejected", {{{"role", "assistant"}, {"content", other}}}}}
               .dump()
        << "\n";
    }
  }
  train::Recipe recipe(const std::string& out, const std::string& peft) const {
    train::Recipe r;
    r.model.path = dir + "/model";
    r.data.path = dir + "/pairs.jsonl";
    r.data.max_seq_len = 64;
    r.data.eval_fraction = 0.25;
    r.output.dir = dir + "/" + out;
    r.logging.progress = false;
    r.train.method = "dpo";
    r.train.batch_size = 3;
    r.train.epochs = 4;
    r.peft.method = peft;
    r.peft.target_modules = {"all-linear"};
    r.optim.lr = peft == "none" ? 1e-3 : 1e-2;
    r.dpo.beta = 0.5;
    return r;
  }
  static std::vector<nlohmann::json> lines(const std::string& metrics) {
    std::vector<nlohmann::json> out;
    std::ifstream f(metrics);
    for (std::string line; std::getline(f, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  }
};

// The policy starts as the reference (a fresh adapter, or the frozen copy of the weights; with
// QLoRA the NF4 base), so the first step's loss is exactly log 2 with zero rewards; then the
// chosen replies win.
TEST_F(DpoTraining, StartsAtLog2AndLearnsThePreference) {
  for (const char* peft : {"lora", "none", "qlora"}) {
    train::Recipe r = recipe(std::string("run_") + peft, peft);
    train::TrainSummary s = train::run_training(r);
    const auto log = lines(r.output.dir + "/metrics.jsonl");
    ASSERT_GE(log.size(), 2u);
    EXPECT_NEAR(log[0].at("loss").get<double>(), std::log(2.0), 1e-5) << peft;
    EXPECT_EQ(log[0].at("rewards/margins").get<double>(), 0.0) << peft;
    EXPECT_EQ(log[0].at("rewards/accuracies").get<double>(), 0.0) << peft;
    EXPECT_LT(s.last_loss, 0.5 * std::log(2.0)) << peft;
    const nlohmann::json& eval = log.back();
    ASSERT_TRUE(eval.contains("eval_rewards/accuracies")) << eval.dump();
    EXPECT_GE(eval.at("eval_rewards/accuracies").get<double>(), 0.8) << peft << " " << eval.dump();
    EXPECT_GT(eval.at("eval_rewards/margins").get<double>(), 0.0) << peft;
    EXPECT_FALSE(eval.contains("eval_ppl"));
  }
}

// A full-finetune DPO run resumed from a middle checkpoint repeats the losses, rewards and final
// weights exactly (the frozen reference comes back from the model files, not the checkpoint).
TEST_F(DpoTraining, ResumedRunRepeatsLossesAndRewardsExactly) {
  train::Recipe r = recipe("resume", "none");
  r.train.max_steps = 6;
  r.checkpoint.every = 2;
  r.checkpoint.keep = 5;
  train::run_training(r);
  const auto full = lines(r.output.dir + "/metrics.jsonl");
  auto ck = train::list_checkpoints(r.output.dir + "/checkpoints");
  ASSERT_EQ(ck.size(), 3u);  // steps 6, 4, 2
  SafetensorsFile before(r.output.dir + "/model/model.safetensors");
  std::map<std::string, std::vector<float>> w;
  for (auto& n : before.names()) w[n] = before.tensor(n).to_float_vector();
  std::filesystem::remove(ck[0]);
  std::filesystem::remove(ck[1]);
  train::TrainSummary resumed = train::run_training(r);
  EXPECT_EQ(resumed.start_step, 2);
  const auto again = lines(r.output.dir + "/metrics.jsonl");
  ASSERT_EQ(again.size(), full.size());
  for (size_t i = 0; i < full.size(); ++i)
    for (const char* k : {"loss", "rewards/margins", "rewards/accuracies", "eval_loss", "eval_rewards/margins"})
      if (full[i].contains(k)) {
        EXPECT_EQ(again[i].at(k), full[i].at(k)) << "line " << i << " " << k;
      }
  SafetensorsFile after(r.output.dir + "/model/model.safetensors");
  for (auto& n : after.names()) EXPECT_EQ(after.tensor(n).to_float_vector(), w.at(n)) << n;
}

// Reference log-probabilities computed once before training give the losses of the per-step
// reference pass (LoRA: adapter off; full finetune: the frozen copy), and a resumed full finetune
// reads them back (it could not recompute them from trained weights).
TEST_F(DpoTraining, PrecomputedReferenceGivesThePerStepLosses) {
  for (const char* peft : {"lora", "none"}) {
    train::Recipe r = recipe(std::string("live_") + peft, peft);
    r.train.max_steps = 6;
    train::run_training(r);
    train::Recipe p = recipe(std::string("pre_") + peft, peft);
    p.train.max_steps = 6;
    p.dpo.precompute_ref = true;
    p.checkpoint.every = 3;
    train::run_training(p);
    ASSERT_TRUE(file_exists(p.output.dir + "/data/ref_logps.h5"));
    const auto a = lines(r.output.dir + "/metrics.jsonl"), b = lines(p.output.dir + "/metrics.jsonl");
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i)
      for (const char* k : {"loss", "rewards/margins", "eval_loss", "eval_rewards/margins"})
        if (a[i].contains(k)) {
          EXPECT_NEAR(b[i].at(k).get<double>(), a[i].at(k).get<double>(), 1e-5 * std::max(1.0, std::abs(a[i].at(k).get<double>())))
              << peft << " line " << i << " " << k;
        }
  }
  train::Recipe p = recipe("pre_none", "none");
  p.train.max_steps = 6;
  p.dpo.precompute_ref = true;
  p.checkpoint.every = 3;
  const auto before = lines(p.output.dir + "/metrics.jsonl");
  std::filesystem::remove(train::list_checkpoints(p.output.dir + "/checkpoints")[0]);  // resume from step 3
  EXPECT_EQ(train::run_training(p).start_step, 3);
  const auto again = lines(p.output.dir + "/metrics.jsonl");
  ASSERT_EQ(again.size(), before.size());
  for (size_t i = 0; i < before.size(); ++i)
    if (before[i].contains("loss")) {
      EXPECT_EQ(again[i].at("loss"), before[i].at("loss")) << "line " << i;
    }
  std::filesystem::remove(train::list_checkpoints(p.output.dir + "/checkpoints")[0]);
  std::filesystem::remove(p.output.dir + "/data/ref_logps.h5");
  try {
    train::run_training(p);
    FAIL() << "a resumed full finetune recomputed its reference from trained weights";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ref_logps.h5: missing or made for other data or weights"), std::string::npos)
        << e.what();
  }
}

TEST_F(DpoTraining, RowsThatAreNotPairsAreRefusedByName) {
  std::ofstream(dir + "/sft.jsonl") << R"({"prompt": "a", "completion": "b"})" << "\n";
  train::Recipe r = recipe("bad", "lora");
  r.data.path = dir + "/sft.jsonl";
  try {
    train::run_training(r);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sft.jsonl: train.method dpo needs preference rows"), std::string::npos) << e.what();
  }
  r = recipe("bad2", "lora");
  r.train.method = "sft";
  try {
    train::run_training(r);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("pairs.jsonl: the rows are preference pairs"), std::string::npos) << e.what();
  }
}
}  // namespace
