// Tensor parallelism over the whole world as the tp group (4 ranks under CTest's mpirun): a
// model split by shard_model, with LoRA on every Linear, gives the full model's loss and, on each
// rank, its part of every gradient; the vocabulary-parallel loss equals cross_entropy.
#include <gtest/gtest.h>

#include <cmath>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/random.h"
#include "models/presets.h"
#include "parallel/tensor_parallel.h"

using namespace forge;
using namespace forge::parallel;

namespace {
// Largest |a - b| over the largest |a|.
double rel_dev(const Tensor& a, const Tensor& b) {
  auto x = a.to_float_vector(), y = b.to_float_vector();
  double d = 0, m = 1e-12;
  for (size_t i = 0; i < x.size(); ++i) {
    d = std::max(d, double(std::abs(x[i] - y[i])));
    m = std::max(m, double(std::abs(x[i])));
  }
  return d / m;
}

// A tiny Llama whose every size divides by 4 ranks, with LoRA on all Linears (B made non-zero so
// both factors carry gradients) and every base weight trainable too.
struct Net {
  std::shared_ptr<models::CausalLM> model;
  peft::LoraModel lora;
  explicit Net(const models::ModelConfig& c) : model(std::make_shared<models::CausalLM>(c)) {
    model->init_weights(0.2, 7);
    peft::LoraConfig lc;
    lc.target_modules = {"all-linear"};
    lora = peft::apply_lora(*model, lc, 11);
    Generator g(13);
    for (auto& [n, a] : lora.adapters) normal_(a->B, 0.0, 0.1, &g);
    for (auto& p : model->parameters()) p.requires_grad_(true);
  }
  std::vector<std::pair<std::string, Tensor>> params() const {
    auto all = model->named_parameters();
    for (auto& np : lora.named_parameters()) all.push_back(np);
    return all;
  }
};
}  // namespace

TEST(TensorParallel, VocabParallelCrossEntropyMatchesCrossEntropy) {
  Communicator& w = world();
  const int n = w.size(), r = w.rank();
  const int64_t N = 6, V = 8 * n, Vl = V / n;
  Generator g(3);
  Tensor full = randn({N, V}, DType::F32, &g);
  full.requires_grad_(true);
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{1, V - 1, -100, Vl - 1, 0, V / 2 + 1}, {N});
  Tensor want = cross_entropy(full, labels, -100, Reduction::Sum);
  mul(want, 0.7).backward();

  Tensor part = full.detach().narrow(1, r * Vl, Vl).contiguous().clone();
  part.requires_grad_(true);
  Tensor got = vocab_parallel_cross_entropy(part, labels, r * Vl, w);
  EXPECT_NEAR(got.item(), want.item(), 1e-5 * std::abs(want.item()));
  mul(got, 0.7).backward();
  EXPECT_LT(rel_dev(full.grad().narrow(1, r * Vl, Vl).contiguous(), part.grad()), 1e-5);
}

TEST(TensorParallel, ShardedModelWithLoraGivesTheFullLossAndGradientParts) {
  Communicator& w = world();
  models::ModelConfig c = models::preset_config("llama", "tiny");  // 64 wide, 4 heads, 172 MLP, 512 vocab
  c.num_key_value_heads = 4;
  if (c.intermediate_size % w.size() || c.num_attention_heads % w.size()) GTEST_SKIP() << "sizes do not divide";
  Generator g(5);
  Tensor I = randint(0, c.vocab_size, {2, 12}, DType::I64, &g);
  std::vector<int64_t> labels = randint(0, c.vocab_size, {24}, DType::I64, &g).to_vector<int64_t>();
  for (size_t i = 0; i < labels.size(); i += 5) labels[i] = -100;  // some positions without a target
  Tensor L = Tensor::from_vector(labels, {24});

  Net full(c);
  Tensor want = cross_entropy(full.model->forward(I).view({24, -1}), L, -100, Reduction::Sum);
  want.backward();

  Net split(c);
  auto splits = shard_model(*split.model, &split.lora, w);
  Tensor logits = split.model->forward(I);  // [2, 12, V / n]
  const int64_t Vl = logits.size(-1);
  Tensor got = vocab_parallel_cross_entropy(logits.view({24, Vl}), L, w.rank() * Vl, w);
  EXPECT_NEAR(got.item(), want.item(), 1e-5 * std::abs(want.item()));
  got.backward();

  auto fp = full.params(), sp = split.params();
  ASSERT_EQ(fp.size(), sp.size());
  for (size_t i = 0; i < fp.size(); ++i) {
    const std::string& name = fp[i].first;
    const ParamSplit& s = splits.at(name);
    Tensor gf = fp[i].second.grad();
    if (s.dim >= 0) {
      const int64_t k = gf.size(s.dim) / w.size();
      gf = gf.narrow(s.dim, w.rank() * k, k).contiguous();
    }
    ASSERT_TRUE(sp[i].second.grad().defined()) << name;
    ASSERT_EQ(sp[i].second.grad().shape(), gf.shape()) << name;
    EXPECT_LT(rel_dev(gf, sp[i].second.grad()), 2e-5) << name << " (split along " << s.dim << ")";
  }
}
