// The lane-wise row reductions under softmax, cross-entropy, RMSNorm and attention: every length
// (full 16-lane blocks, tails, shorter than a block), bf16 input, NaN and -inf handled as the
// scalar loops they replaced handled them, and sums as accurate as a double-precision reference.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cpu/row_reduce.h"

namespace forge::cpu {
namespace {

const float kInf = std::numeric_limits<float>::infinity();

std::vector<float> random_row(int64_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, 3.0f);
  std::vector<float> x(static_cast<size_t>(n), 0.0f);
  for (float& v : x) v = d(g);
  return x;
}

TEST(RowReduce, MaxMatchesAScalarScanAtEveryLength) {
  for (int64_t n : {1, 5, 15, 16, 17, 31, 48, 100, 257}) {
    std::vector<float> x = random_row(n, uint32_t(n));
    float want = -kInf;
    for (float v : x) want = std::max(want, v);
    EXPECT_EQ(row_max(x.data(), n), want) << "n = " << n;
    EXPECT_EQ(row_max(x.data(), n, 100.0f), 100.0f) << "the initial value takes part, n = " << n;
    x[size_t(n - 1)] = 50.0f;  // the maximum in the tail
    EXPECT_EQ(row_max(x.data(), n), 50.0f) << "n = " << n;
  }
  EXPECT_EQ(row_max(static_cast<const float*>(nullptr), 0), -kInf);
}

TEST(RowReduce, MaxSkipsNaNAndKeepsMinusInfinityRows) {
  std::vector<float> x = random_row(40, 7);
  x[3] = x[35] = std::numeric_limits<float>::quiet_NaN();  // one in a full block, one in the tail
  float want = -kInf;
  for (float v : x)
    if (v == v) want = std::max(want, v);
  EXPECT_EQ(row_max(x.data(), 40), want);
  std::vector<float> masked(37, -kInf);
  EXPECT_EQ(row_max(masked.data(), 37), -kInf);
}

TEST(RowReduce, MaxReadsBf16) {
  std::vector<float> x = random_row(70, 3);
  std::vector<bf16> b(x.size());
  float want = -kInf;
  for (size_t i = 0; i < x.size(); ++i) {
    store_f32(&b[i], x[i]);
    want = std::max(want, load_f32(&b[i]));
  }
  EXPECT_EQ(row_max(b.data(), 70), want);
}

TEST(RowReduce, SumsAreAccurateAtEveryLength) {
  for (int64_t n : {1, 7, 16, 33, 288, 1000, 32000}) {
    std::vector<float> x = random_row(n, uint32_t(100 + n));
    double sum = 0, sq = 0, abs_sum = 0;
    for (float v : x) sum += v, sq += double(v) * v, abs_sum += std::abs(v);
    // Error bound of a float sum: n * eps * sum |x|, far looser than lane sums need.
    EXPECT_NEAR(row_sum(x.data(), n), sum, 1e-6 * abs_sum + 1e-6) << "n = " << n;
    EXPECT_NEAR(row_sum_squares(x.data(), n), sq, 1e-6 * sq) << "n = " << n;
  }
}

TEST(RowReduce, ExpShiftedSumWritesTheExponentialsAndReturnsTheirSum) {
  for (int64_t n : {3, 16, 45, 256}) {
    std::vector<float> x = random_row(n, uint32_t(n)), y = x;
    const float m = row_max(x.data(), n);
    const float s = exp_shifted_sum(y.data(), n, m);
    double want = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double e = std::exp(double(x[size_t(i)] - m));  // of the float difference, as the kernel
      EXPECT_NEAR(y[size_t(i)], e, 2.5e-7 * e) << "i = " << i;
      want += e;
    }
    EXPECT_NEAR(s, want, 1e-6 * want) << "n = " << n;
  }
  std::vector<float> row = {1.0f, -kInf, 2.0f};  // masked entries become exact zeros
  EXPECT_NEAR(exp_shifted_sum(row.data(), 3, 2.0f), 1.0 + std::exp(-1.0), 1e-6);
  EXPECT_EQ(row[1], 0.0f);
}

}  // namespace
}  // namespace forge::cpu
