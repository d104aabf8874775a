// nn modules: dotted names, state dicts with clear errors, dtype moves, Linear == linear op.
#include <gtest/gtest.h>

#include <algorithm>

#include "core/autograd.h"
#include "core/nn.h"
#include "tests/support/op_table.h"

namespace forge {
namespace {

struct Block : nn::Module {
  std::shared_ptr<nn::Linear> q_proj = register_module("q_proj", std::make_shared<nn::Linear>(8, 8, false));
  std::shared_ptr<nn::RMSNorm> norm = register_module("input_layernorm", std::make_shared<nn::RMSNorm>(8));
};

struct Model : nn::Module {
  std::shared_ptr<nn::Embedding> embed = register_module("embed_tokens", std::make_shared<nn::Embedding>(20, 8));
  std::shared_ptr<nn::ModuleList> layers = register_module("layers", std::make_shared<nn::ModuleList>());
  Model() {
    layers->push_back(std::make_shared<Block>());
    layers->push_back(std::make_shared<Block>());
  }
};

TEST(Nn, ParametersHaveHuggingFaceStyleNames) {
  Model m;
  std::vector<std::string> names;
  for (auto& [n, p] : m.named_parameters()) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"embed_tokens.weight", "layers.0.q_proj.weight",
                                             "layers.0.input_layernorm.weight", "layers.1.q_proj.weight",
                                             "layers.1.input_layernorm.weight"}));
  EXPECT_EQ(m.num_parameters(), 20 * 8 + 2 * (64 + 8));
}

TEST(Nn, StateDictRoundTripAndErrors) {
  Model a, b;
  b.load_state_dict(a.state_dict());
  for (auto& [n, p] : a.named_parameters()) EXPECT_EQ(test::compare(b.parameter(n), p, 0), "") << n;

  auto sd = a.state_dict();
  sd.erase("layers.1.q_proj.weight");
  sd["layers.9.mlp.weight"] = Tensor::zeros({1});
  try {
    b.load_state_dict(sd);
    FAIL();
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("missing tensors: layers.1.q_proj.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("unexpected tensors: layers.9.mlp.weight"), std::string::npos) << msg;
  }
  sd = a.state_dict();
  sd["embed_tokens.weight"] = Tensor::zeros({21, 8});
  try {
    b.load_state_dict(sd);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'embed_tokens.weight' has shape [21, 8]"), std::string::npos) << e.what();
  }
}

TEST(Nn, LinearMatchesTheOpAndMovesDtype) {
  nn::Linear lin(6, 4, true);
  Tensor x = randn({3, 6});
  EXPECT_EQ(test::compare(lin.forward(x), add(matmul(x, lin.weight.t()), lin.bias), 1e-5), "");
  Tensor handle = lin.weight;
  lin.to(DType::BF16);
  EXPECT_EQ(handle.dtype(), DType::BF16) << "handles held elsewhere see the conversion";
  EXPECT_TRUE(lin.weight.requires_grad());
  Tensor y = lin.forward(x.to(DType::BF16));
  EXPECT_EQ(y.dtype(), DType::BF16);
}

TEST(Nn, ColumnMajorWeightsGiveTheSameLinearAndEmbedding) {
  // Serving stores weights column-major (W^T contiguous behind the [out, in] view); every reader
  // must see the same values. Odd sizes, so no stride happens to equal a size.
  nn::Linear lin(13, 7, true);
  nn::Embedding emb(29, 13);
  Tensor x = randn({5, 13});
  Tensor ids = Tensor::from_vector(std::vector<int64_t>{3, 0, 28, 3, 17}, {5});
  NoGradGuard ng;
  Tensor want_lin = lin.forward(x), want_emb = emb.forward(ids);
  for (Tensor* w : {&lin.weight, &emb.weight}) w->set_data(w->t().contiguous().t());
  EXPECT_EQ(lin.weight.stride(0), 1);
  EXPECT_EQ(emb.weight.stride(0), 1);
  EXPECT_EQ(test::compare(lin.forward(x), want_lin, 1e-6), "");
  EXPECT_EQ(test::compare(emb.forward(ids), want_emb, 0), "") << "a gather copies exactly";
  emb.to(DType::BF16);  // a bf16 table, column-major again: 2-byte elements on the strided path
  emb.weight.set_data(emb.weight.t().contiguous().t());
  EXPECT_EQ(test::compare(emb.forward(ids), want_emb.to(DType::BF16), 0), "");
}

// Under SkipInitGuard, Linear and Embedding weights are left unfilled (a model about to be loaded);
// without it they are initialised; the guard nests and restores.
TEST(Nn, SkipInitGuardLeavesWeightsUnfilledAndRestores) {
  EXPECT_FALSE(nn::SkipInitGuard::active());
  {
    nn::SkipInitGuard outer;
    {
      nn::SkipInitGuard inner;
      EXPECT_TRUE(nn::SkipInitGuard::active());
    }
    EXPECT_TRUE(nn::SkipInitGuard::active());
    nn::Linear lin(64, 32, true);
    nn::Embedding emb(16, 8);
    EXPECT_EQ(lin.weight.shape(), (Shape{32, 64}));
    EXPECT_EQ(lin.bias.shape(), (Shape{32}));
    EXPECT_EQ(emb.weight.shape(), (Shape{16, 8}));
  }
  EXPECT_FALSE(nn::SkipInitGuard::active());
  nn::Linear lin(64, 32, true);
  const std::vector<float> w = lin.weight.to_float_vector();
  float lo = 1, hi = -1;
  for (float x : w) lo = std::min(lo, x), hi = std::max(hi, x);
  EXPECT_LT(lo, -0.1f);  // uniform in +-1/8
  EXPECT_GT(hi, 0.1f);
  EXPECT_LE(hi, 0.125f);
}

}  // namespace
}  // namespace forge
