// The serving engine on a CUDA device: CTest runs these with FORGE_SIMULATE_CUDA=1 (the CUDA path
// on CPU kernels) and a lent GPU runs them for real. Batched greedy decoding, with and without a
// LoRA adapter, gives the CPU engine's tokens; a decode step makes no host fallback, copies at most
// 8 small tensors to the device (ids, positions, slots, block tables, query starts, context lengths,
// row sequences, sampled rows; the first step also the rotary table) and one back (the sampled rows'
// logits).
#include <gtest/gtest.h>

#include "core/device_stats.h"
#include "infer/engine.h"
#include "kernels/cuda/cuda_backend.h"
#include "models/pretrained.h"
#include "peft/lora.h"
#include "peft/adapter_io.h"
#include "tests/support/test_util.h"

namespace forge::infer {
namespace {

class EngineOnDevice : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda::available()) GTEST_SKIP() << "no CUDA device (CTest's *.sim run simulates one): " << cuda::status();
    dir_ = testing::fresh_temp_dir("forge_engine_device_model");
    testing::make_tiny_model_dir(dir_, 11, 0.2);
  }
  std::unique_ptr<Engine> engine(Device dev, std::shared_ptr<models::CausalLM>* model_out = nullptr) {
    auto model = models::load_model(dir_, DType::F32, dev);
    if (model_out) *model_out = model;
    EngineConfig cfg;
    cfg.max_model_len = 128;
    cfg.kv_cache_bytes = 4 << 20;
    return std::make_unique<Engine>(model, data::Tokenizer::from_dir(dir_),
                                    models::stop_token_ids(dir_, model->config()), cfg);
  }
  static Request greedy(int i, int64_t adapter = 0) {
    Request r;
    for (int t = 0; t < 5 + i; ++t) r.prompt.push_back((i * 131 + t * 17 + t * t) % 200 + 1);
    r.sampling.temperature = 0;
    r.max_tokens = 12;
    r.ignore_eos = true;
    r.adapter = adapter;
    return r;
  }
  // Runs requests 0..n-1 together; each step's device costs go to *steps when given.
  static std::vector<std::vector<int64_t>> run(Engine& e, int n, int64_t adapter, std::vector<DeviceStats>* steps) {
    std::vector<std::vector<int64_t>> out{size_t(n)};
    for (int i = 0; i < n; ++i)
      e.add(greedy(i, i % 2 ? adapter : 0), [&out, i](const Event& ev) {
        out[size_t(i)].insert(out[size_t(i)].end(), ev.tokens.begin(), ev.tokens.end());
      });
    for (;;) {
      const DeviceStats before = device_stats();
      if (!e.step()) break;
      if (steps) steps->push_back(device_stats() - before);
    }
    return out;
  }
  std::string dir_;
};

TEST_F(EngineOnDevice, GreedyBatchEqualsTheCpuWithinItsCopyBudget) {
  auto cpu = engine(Device::cpu());
  auto gpu = engine(Device::cuda(0));
  std::vector<DeviceStats> steps;
  const auto want = run(*cpu, 4, 0, nullptr);
  const auto got = run(*gpu, 4, 0, &steps);
  EXPECT_EQ(got, want);
  ASSERT_GT(steps.size(), 10u);
  for (size_t s = 0; s < steps.size(); ++s) {
    EXPECT_EQ(steps[s].host_fallbacks, 0) << "step " << s;
    EXPECT_LE(steps[s].h2d, s == 0 ? 9 : 8) << "step " << s << ": " << steps[s].str();  // + the rotary table once
    EXPECT_LE(steps[s].d2h, 1) << "step " << s << ": " << steps[s].str();
  }
}

TEST_F(EngineOnDevice, LoraAdaptersServeFromTheDevice) {
  // An adapter with visible effect: random A and B (PEFT initialises B to zero).
  const std::string adir = testing::fresh_temp_dir("forge_engine_device_lora");
  {
    auto model = models::load_model(dir_, DType::F32);
    peft::LoraConfig lc;
    lc.r = 4;
    lc.alpha = 8;
    lc.target_modules = {"q_proj", "v_proj", "down_proj"};
    peft::LoraModel lora = peft::apply_lora(*model, lc, 3);
    for (auto& [name, p] : lora.named_parameters()) p.detach().copy_(mul(randn(p.shape()), 0.3));
    peft::save_adapter(lora, adir);
  }
  auto cpu = engine(Device::cpu());
  auto gpu = engine(Device::cuda(0));
  const int64_t a_cpu = cpu->add_adapter(adir), a_gpu = gpu->add_adapter(adir);
  std::vector<DeviceStats> steps;
  const auto want = run(*cpu, 4, a_cpu, nullptr);
  const auto got = run(*gpu, 4, a_gpu, &steps);
  EXPECT_EQ(got, want);
  const auto base = run(*cpu, 4, 0, nullptr);
  EXPECT_NE(want[1], base[1]) << "the adapter changes nothing: the test would not see a wrong one";
  for (const DeviceStats& s : steps) EXPECT_EQ(s.host_fallbacks, 0);
}

}  // namespace
}  // namespace forge::infer
