// Sampler rules on hand-made logits: penalties as vLLM applies them, top-k / top-p / min-p
// support of the drawn tokens, greedy ties, and logprobs as a log-softmax.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include "infer/sampler.h"

namespace forge::infer {
namespace {

TEST(Sampler, PenaltiesFollowTheRepetitionPresenceAndFrequencyRules) {
  std::vector<float> l = {2.0f, -2.0f, 1.0f, 0.5f, 3.0f};
  SamplingParams p;
  p.repetition_penalty = 2.0;
  p.presence_penalty = 0.5;
  p.frequency_penalty = 0.25;
  apply_penalties(l.data(), 5, p, /*prompt=*/{0, 1}, /*output=*/{2, 2, 3});
  EXPECT_FLOAT_EQ(l[0], 1.0f);                      // prompt token, positive: divided
  EXPECT_FLOAT_EQ(l[1], -4.0f);                     // prompt token, negative: multiplied
  EXPECT_FLOAT_EQ(l[2], 0.5f - 0.5f - 2 * 0.25f);   // output twice: repetition, presence, 2x frequency
  EXPECT_FLOAT_EQ(l[3], 0.25f - 0.5f - 0.25f);
  EXPECT_FLOAT_EQ(l[4], 3.0f);                      // unseen: untouched
  // The logit bias is added after the penalties (so a repetition penalty never scales it).
  p.logit_bias = {{0, 1.5f}, {4, -100.0f}};
  apply_penalties(l.data(), 5, p, {0, 1}, {2, 2, 3});
  EXPECT_FLOAT_EQ(l[0], 0.5f + 1.5f);
  EXPECT_FLOAT_EQ(l[4], 3.0f - 100.0f);
}

std::set<int64_t> drawn(const std::vector<float>& l, const SamplingParams& p, int n = 2000) {
  Rng rng(42);
  std::set<int64_t> out;
  for (int i = 0; i < n; ++i) out.insert(sample_token(l.data(), int64_t(l.size()), p, rng));
  return out;
}

TEST(Sampler, TopKTopPAndMinPBoundWhatCanBeDrawn) {
  // Probabilities at temperature 1: about 0.48, 0.29, 0.18, 0.03, 0.02.
  const std::vector<float> l = {2.0f, 1.5f, 1.0f, -0.8f, -1.2f};
  SamplingParams p;
  EXPECT_EQ(drawn(l, p).size(), 5u);
  p.top_k = 2;
  EXPECT_EQ(drawn(l, p), (std::set<int64_t>{0, 1}));
  p.top_k = 0;
  p.top_p = 0.7;  // 0.48 + 0.29 reaches it
  EXPECT_EQ(drawn(l, p), (std::set<int64_t>{0, 1}));
  p.top_p = 1.0;
  p.min_p = 0.3;  // keep p >= 0.3 * 0.48
  EXPECT_EQ(drawn(l, p), (std::set<int64_t>{0, 1, 2}));
  p.min_p = 0;
  p.temperature = 0;
  EXPECT_EQ(drawn(l, p), (std::set<int64_t>{0}));
  const std::vector<float> tie = {1.0f, 3.0f, 3.0f};
  EXPECT_EQ(argmax(tie.data(), 3), 1) << "ties go to the lowest id";
}

TEST(Sampler, ArgmaxIsTheFirstMaximumAtEveryLengthAndPlace) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-4.0f, 4.0f);
  for (int64_t V : {1, 7, 16, 17, 100, 32000, 32007}) {
    std::vector<float> l(static_cast<size_t>(V));
    for (float& x : l) x = u(rng);
    for (int trial = 0; trial < 20; ++trial) {
      // A planted maximum, sometimes twice (the first must win), at random places.
      const int64_t a = int64_t(rng() % uint64_t(V)), b = int64_t(rng() % uint64_t(V));
      std::vector<float> x = l;
      x[size_t(a)] = 5.0f + float(trial);
      if (trial % 2) x[size_t(b)] = x[size_t(a)];
      const int64_t want = std::max_element(x.begin(), x.end()) - x.begin();  // first of the largest
      EXPECT_EQ(argmax(x.data(), V), want) << "V " << V << " trial " << trial;
    }
  }
}

TEST(Sampler, SameSeedSameDrawsAndFrequenciesFollowTheSoftmax) {
  const std::vector<float> l = {0.0f, std::log(3.0f)};  // p = 0.25, 0.75
  SamplingParams p;
  Rng a(7), b(7);
  int ones = 0;
  for (int i = 0; i < 20000; ++i) {
    const int64_t x = sample_token(l.data(), 2, p, a);
    EXPECT_EQ(x, sample_token(l.data(), 2, p, b));
    ones += int(x);
  }
  EXPECT_NEAR(ones / 20000.0, 0.75, 0.015);
}

TEST(Sampler, LogprobsAreALogSoftmax) {
  const std::vector<float> l = {1.0f, 2.0f, 0.5f};
  const double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(0.5));
  TokenLogprob t = token_logprob(l.data(), 3, 0, 2);
  EXPECT_NEAR(t.logprob, 1.0 - lse, 1e-6);
  ASSERT_EQ(t.top.size(), 2u);
  EXPECT_EQ(t.top[0].first, 1);
  EXPECT_NEAR(t.top[0].second, 2.0 - lse, 1e-6);
  EXPECT_EQ(t.top[1].first, 0);
}

}  // namespace
}  // namespace forge::infer
