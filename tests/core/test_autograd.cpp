// The autograd engine: shared subgraphs, accumulation, hooks, freed graphs, checkpointing.
#include <gtest/gtest.h>

#include "core/autograd.h"
#include "core/ops.h"
#include "tests/support/op_table.h"

namespace forge {
namespace {
using test::compare;

TEST(Autograd, SharedSubgraphSumsBothPaths) {
  Tensor x = randn({5}).requires_grad_();
  Tensor h = exp(x);                  // used twice below
  Tensor y = sum(add(mul(h, h), h));  // dy/dx = (2h + 1) * h
  y.backward();
  Tensor hx = exp(x.detach());
  EXPECT_EQ(compare(x.grad(), mul(add(mul(hx, 2.0), 1.0), hx), 1e-6), "");
}

TEST(Autograd, GradientsAccumulateAcrossBackwardCalls) {
  Tensor w = randn({3, 4}).requires_grad_();
  Tensor x = randn({2, 3});
  sum(matmul(x, w)).backward();
  Tensor first = w.grad().clone();
  sum(matmul(x, w)).backward();
  EXPECT_EQ(compare(w.grad(), mul(first, 2.0), 1e-6), "");
}

TEST(Autograd, HooksFireOncePerParameterPerBackward) {
  Tensor w = randn({4}).requires_grad_();
  int pre = 0, post = 0;
  w.register_hook([&](const Tensor& g) {
    ++pre;
    return mul(g, 2.0);  // hooks may replace the gradient
  });
  w.register_post_accumulate_grad_hook([&](Tensor& p) {
    ++post;
    EXPECT_TRUE(p.grad().defined());
  });
  Tensor y = sum(add(add(mul(w, 3.0), w), square(w)));  // w used three times
  y.backward();
  EXPECT_EQ(pre, 1);
  EXPECT_EQ(post, 1);
  Tensor expect = mul(add(mul(w.detach(), 2.0), 4.0), 2.0);
  EXPECT_EQ(compare(w.grad(), expect, 1e-6), "");
}

TEST(Autograd, HookOnIntermediateTensor) {
  Tensor x = randn({3}).requires_grad_();
  Tensor h = mul(x, 2.0);
  Tensor seen;
  h.register_hook([&](const Tensor& g) {
    seen = g;
    return Tensor();
  });
  sum(mul(h, h)).backward();
  EXPECT_EQ(compare(seen, mul(h.detach(), 2.0), 1e-6), "");
}

TEST(Autograd, BackwardThroughFreedGraphIsAClearError) {
  Tensor x = randn({3}).requires_grad_();
  Tensor y = sum(exp(x));
  y.backward();
  try {
    y.backward();
    FAIL() << "second backward should throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("retain_graph"), std::string::npos) << e.what();
  }
}

TEST(Autograd, RetainGraphAllowsASecondBackward) {
  Tensor x = randn({3}).requires_grad_();
  Tensor y = sum(exp(x));
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward();
  EXPECT_EQ(compare(x.grad(), mul(exp(x.detach()), 2.0), 1e-6), "");
}

TEST(Autograd, NoGradAndDetachRecordNothing) {
  Tensor x = randn({3}).requires_grad_();
  {
    NoGradGuard ng;
    Tensor y = mul(x, 2.0);
    EXPECT_FALSE(y.requires_grad());
  }
  Tensor d = x.detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_EQ(d.raw_data(), x.raw_data()) << "detach shares storage";
  EXPECT_THROW(sum(d).backward(), Error);
}

TEST(Autograd, NonScalarBackwardNeedsAGradient) {
  Tensor x = randn({3}).requires_grad_();
  EXPECT_THROW(exp(x).backward(), Error);
}

// A small block with dropout inside: the checkpointed version must give the same values and the
// same gradients (the recompute must replay the same dropout mask).
std::vector<Tensor> block(const std::vector<Tensor>& in, const Tensor& w1, const Tensor& w2) {
  Tensor h = silu(linear(in[0], w1));
  h = dropout(h, 0.3);
  return {linear(h, w2)};
}

TEST(Autograd, CheckpointMatchesThePlainBlock) {
  Tensor w1 = randn({16, 8}).requires_grad_(), w2 = randn({8, 16}).requires_grad_();
  Tensor x0 = randn({4, 8});
  auto run = [&](bool ckpt) {
    w1.set_grad(Tensor());
    w2.set_grad(Tensor());
    manual_seed(7);
    Tensor x = x0.detach().requires_grad_();
    Tensor y = ckpt ? checkpoint([&](const std::vector<Tensor>& in) { return block(in, w1, w2); }, {x})[0]
                    : block({x}, w1, w2)[0];
    sum(square(y)).backward();
    return std::vector<Tensor>{y.detach(), x.grad(), w1.grad(), w2.grad()};
  };
  auto plain = run(false), ck = run(true);
  for (size_t i = 0; i < plain.size(); ++i) EXPECT_EQ(compare(ck[i], plain[i], 1e-6), "") << "item " << i;
}

TEST(Autograd, InPlaceOnATensorThatRequiresGradIsRefused) {
  Tensor w = randn({3}).requires_grad_();
  EXPECT_THROW(add_(w, ones_like(w)), Error);
  NoGradGuard ng;
  add_(w, ones_like(w));  // fine without grad mode (optimiser updates)
}

}  // namespace
}  // namespace forge
