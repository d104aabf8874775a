// QLoRA's NF4 weights: levels, double-quantised absmax values and dequantised weights equal the
// PyTorch oracle's (tests/reference/nf4_reference.py), and the NF4 linear's output and input
// gradient equal x W'^T and gout W' of the oracle's dequantised W'.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <vector>

#include "core/autograd.h"
#include "core/hdf5_io.h"
#include "core/ops.h"
#include "peft/nf4.h"
#include "tests/support/test_util.h"

using namespace forge;
using forge::testing::rel_error;

namespace {

class Nf4Parity : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    const char* dir = std::getenv("FORGE_LORA_REFERENCE");
    if (!dir) GTEST_SKIP() << "FORGE_LORA_REFERENCE is not set (run through ctest)";
    ref = load_hdf5(std::string(dir) + "/nf4_reference.h5");
  }
  Tensor get(const char* k) {
    std::string key = GetParam();
    key += '/';
    key += k;
    return ref.at(key);
  }
  std::map<std::string, Tensor> ref;
};

TEST_P(Nf4Parity, LevelsAbsmaxAndWeightsEqualTheOracle) {
  const Tensor w = get("w");
  auto q = std::make_shared<peft::Nf4Weight>(w);
  const std::vector<uint8_t> codes = get("codes").to_vector<uint8_t>();
  int64_t wrong = 0;
  for (size_t i = 0; i < codes.size(); ++i) wrong += q->code(int64_t(i)) != codes[i];
  EXPECT_EQ(wrong, 0) << "of " << codes.size() << " levels";
  const std::vector<float> absmax = get("absmax").to_float_vector();
  for (size_t b = 0; b < absmax.size(); ++b) ASSERT_NEAR(q->absmax(int64_t(b)), absmax[b], 1e-6f * absmax[b]) << b;
  EXPECT_LE(rel_error(q->dequantize(DType::F32), get("w_dq")), 1e-6);
  EXPECT_LE(rel_error(q->dequantize(DType::BF16).to(DType::F32), get("w_dq")), 4e-3);
  // The oracle's W' is close to W (4-bit levels), and it takes about an eighth of f32.
  EXPECT_LE(rel_error(get("w_dq"), w), 0.15);
  EXPECT_LT(double(q->nbytes()), 0.14 * double(w.nbytes()));
}

TEST_P(Nf4Parity, LinearForwardAndInputGradientEqualTheOracle) {
  auto q = std::make_shared<peft::Nf4Weight>(get("w"));
  Tensor x = get("x").detach();
  x.requires_grad_();
  Tensor y = q->linear(x);
  EXPECT_LE(rel_error(y, get("y")), 1e-5);
  y.backward(get("gout"));
  ASSERT_TRUE(x.grad().defined());
  EXPECT_LE(rel_error(x.grad(), get("grad_x")), 1e-5);
  // bf16 activations: bf16 out, within bf16 rounding of the oracle.
  Tensor xb = get("x").to(DType::BF16);
  xb.requires_grad_();
  Tensor yb = q->linear(xb);
  EXPECT_EQ(yb.dtype(), DType::BF16);
  EXPECT_LE(rel_error(yb.to(DType::F32), get("y")), 2e-2);
  yb.backward(get("gout").to(DType::BF16));
  EXPECT_LE(rel_error(xb.grad().to(DType::F32), get("grad_x")), 2e-2);
}

INSTANTIATE_TEST_SUITE_P(Shapes, Nf4Parity, ::testing::Values("small", "tail", "double"));

// Values at and one float step either side of every midpoint between two levels (where a fast
// nearest-level search can round the wrong way) get the level a plain argmin over the table
// gives, the first of two equally close ones.
TEST(Nf4Levels, NearestLevelAtMidpointsIsTheArgmin) {
  const float levels[16] = {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
                            -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
                            0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f,
                            0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,
                            0.7229568362236023f, 1.0f};
  std::vector<float> v;
  for (int k = 0; k < 15; ++k) {
    const float m = 0.5f * (levels[k] + levels[k + 1]);
    v.push_back(1.0f);  // each block's absmax is 1, so a value is its own scaled value
    for (float x : {std::nextafter(m, -2.0f), m, std::nextafter(m, 2.0f), levels[k], levels[k + 1]}) v.push_back(x);
  }
  v.resize(128, 0.25f);  // two whole blocks of 64
  Tensor w = Tensor::from_vector(v, {2, 64});
  peft::Nf4Weight q(w);
  for (size_t i = 0; i < v.size(); ++i) {
    int best = 0;
    for (int k = 1; k < 16; ++k)
      if (std::fabs(v[i] - levels[k]) < std::fabs(v[i] - levels[best])) best = k;
    EXPECT_EQ(q.code(int64_t(i)), best) << "value " << v[i] << " at " << i;
  }
}

}  // namespace
