// exp_f32, the exponential every CPU softmax, SiLU and attention kernel uses: accurate to 2 ulps
// over the whole float range, exact at the edges, and the same when a loop vectorises it.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/elementwise_ops.h"

namespace forge {
namespace {

TEST(ExpF32, WithinTwoUlpsOfExpOverTheWholeRange) {
  double worst = 0;
  float worst_x = 0;
  for (float x = -87.0f; x <= 88.0f; x += 0.0013f) {
    const double want = std::exp(double(x));
    const double ulp = std::nextafter(float(want), std::numeric_limits<float>::infinity()) - float(want);
    const double err = std::abs(double(exp_f32(x)) - want) / ulp;
    if (err > worst) worst = err, worst_x = x;
  }
  EXPECT_LE(worst, 2.0) << "at x = " << worst_x;
}

TEST(ExpF32, EdgesAreExact) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(exp_f32(0.0f), 1.0f);
  EXPECT_EQ(exp_f32(-inf), 0.0f);
  EXPECT_EQ(exp_f32(-100.0f), 0.0f);
  EXPECT_EQ(exp_f32(inf), inf);
  EXPECT_EQ(exp_f32(100.0f), inf);
  EXPECT_TRUE(std::isnan(exp_f32(std::numeric_limits<float>::quiet_NaN())));
}

TEST(ExpF32, AVectorisedLoopGivesTheScalarResults) {
  std::vector<float> x(4099), vec(x.size()), scalar(x.size());
  for (size_t i = 0; i < x.size(); ++i) x[i] = -90.0f + 180.0f * float(i) / float(x.size());
  x[7] = -std::numeric_limits<float>::infinity();
  x[8] = std::numeric_limits<float>::quiet_NaN();
#pragma omp simd
  for (size_t i = 0; i < x.size(); ++i) vec[i] = exp_f32(x[i]);
  for (size_t i = 0; i < x.size(); ++i) {
    volatile float xi = x[i];  // volatile: one value at a time, never vectorised
    scalar[i] = exp_f32(xi);
  }
  for (size_t i = 0; i < x.size(); ++i)
    if (!(std::isnan(vec[i]) && std::isnan(scalar[i]))) EXPECT_EQ(vec[i], scalar[i]) << "x = " << x[i];
}

}  // namespace
}  // namespace forge
