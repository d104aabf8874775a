// End-to-end sanity: a tiny MLP and a tiny attention block fit their data (loss falls >= 10x).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <functional>

#include "core/autograd.h"
#include "core/nn.h"
#include "train/optimizer.h"

namespace forge {
namespace {

// Runs `steps` AdamW steps on loss_fn and checks the loss fell at least 10x.
void expect_fits(std::vector<Tensor> params, int steps, const std::function<Tensor()>& loss_fn) {
  train::AdamW opt(std::move(params), {.lr = 1e-2});
  double first = 0, last = 0;
  for (int step = 0; step < steps; ++step) {
    Tensor loss = loss_fn();
    if (step == 0) first = loss.item();
    last = loss.item();
    loss.backward();
    opt.step();
    opt.zero_grad();
  }
  std::printf("loss %.4f -> %.5f\n", first, last);
  EXPECT_LT(last, first / 10) << "first " << first << " last " << last;
}

TEST(Training, TinyMlpFitsData) {
  manual_seed(1);
  nn::Linear l1(4, 32), l2(32, 1);
  Tensor x = randn({64, 4});
  Tensor target = add(mul(x.select(1, 0).unsqueeze(1), x.select(1, 1).unsqueeze(1)), tanh(x.select(1, 2).unsqueeze(1)));
  std::vector<Tensor> ps = l1.parameters();
  for (auto& p : l2.parameters()) ps.push_back(p);
  expect_fits(ps, 400, [&] { return mean(square(sub(l2.forward(gelu(l1.forward(x))), target))); });
}

TEST(Training, TinyAttentionBlockFitsData) {
  // Next-token prediction of a fixed periodic sequence through embedding, RMSNorm, causal
  // attention with RoPE and a tied output head.
  manual_seed(2);
  const int64_t V = 12, C = 32, H = 4, D = 8, T = 24;
  nn::Embedding emb(V, C);
  nn::RMSNorm norm(C);
  nn::Linear qkv(C, 3 * C, false), o(C, C, false);
  std::vector<int64_t> seq;
  for (int64_t i = 0; i <= T; ++i) seq.push_back((i * 5 + i / 3) % V);
  Tensor ids = Tensor::from_vector(std::vector<int64_t>(seq.begin(), seq.end() - 1), {1, T});
  Tensor tgt = Tensor::from_vector(std::vector<int64_t>(seq.begin() + 1, seq.end()), {T});
  Tensor pos = Tensor::arange(T);
  std::vector<float> fr;
  for (int64_t i = 0; i < D / 2; ++i) fr.push_back(float(std::pow(10000.0, -2.0 * double(i) / double(D))));
  Tensor inv = Tensor::from_floats(fr, {D / 2});
  std::vector<Tensor> ps;
  for (nn::Module* m : std::vector<nn::Module*>{&emb, &norm, &qkv, &o})
    for (auto& p : m->parameters()) ps.push_back(p);
  expect_fits(ps, 150, [&] {
    Tensor x = emb.forward(ids);  // [1, T, C]
    Tensor h = qkv.forward(norm.forward(x)).view({1, T, 3, H, D});
    Tensor q = rope(h.select(2, 0).transpose(1, 2), pos, inv);
    Tensor k = rope(h.select(2, 1).transpose(1, 2), pos, inv);
    Tensor v = h.select(2, 2).transpose(1, 2);
    Tensor a = scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape({1, T, C});
    x = add(x, o.forward(a));
    return cross_entropy(linear(norm.forward(x), emb.weight).view({T, V}), tgt);
  });
}

}  // namespace
}  // namespace forge
