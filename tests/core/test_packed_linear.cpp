// The decode GEMM over packed weight panels (kernels/cpu/packed_gemm.h) behind linear_packed and
// nn::Linear's inference twin, f32 and bf16: the same values as linear on awkward shapes, the same
// bits for a row whatever batch or thread count it runs in, and only ever without gradients.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/nn.h"
#include "core/ops.h"
#include "core/random.h"
#include "kernels/cpu/packed_gemm.h"

namespace forge {
namespace {

double max_rel_diff(const Tensor& a, const Tensor& b) {
  std::vector<float> x = a.to_float_vector(), y = b.to_float_vector();
  double scale = 1e-30, worst = 0;
  for (float v : y) scale = std::max(scale, double(std::abs(v)));
  for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::abs(double(x[i]) - double(y[i])) / scale);
  return worst;
}

// Rows (1, a partial 8-row block, several blocks), features not a multiple of the 48-wide panel
// or of a vector, and K from 1 to 101.
struct Shape3 {
  int64_t M, N, K;
};
const Shape3 kAwkward[] = {{1, 50, 37}, {7, 97, 64},   {13, 48, 5}, {64, 130, 100},
                           {3, 17, 8},  {64, 130, 101}, {3, 17, 1}};

std::string shape_name(const Shape3& s) {
  return std::to_string(s.M) + "x" + std::to_string(s.N) + "x" + std::to_string(s.K);
}

TEST(PackedLinear, MatchesLinearOnAwkwardShapes) {
  NoGradGuard ng;
  for (Shape3 s : kAwkward) {
    SCOPED_TRACE(shape_name(s));
    Tensor x = randn({s.M, s.K}), w = randn({s.N, s.K}), b = randn({s.N});
    Tensor p = pack_linear_weight(w);
    EXPECT_LE(max_rel_diff(linear_packed(x, p, s.N, b), linear(x, w, b)), 1e-5);
    EXPECT_LE(max_rel_diff(linear_packed(x.view({1, s.M, s.K}), p, s.N), linear(x, w).view({1, s.M, s.N})), 1e-5);
    // A column-major weight (as serving stores it) packs to the same panels.
    EXPECT_EQ(pack_linear_weight(w.t().contiguous().t()).to_float_vector(), p.to_float_vector());
  }
}

// y = x w^T + b in double from the (rounded) inputs.
std::vector<double> reference(const Tensor& x, const Tensor& w, const Tensor& b) {
  const int64_t M = x.size(0), N = w.size(0), K = w.size(1);
  std::vector<float> xs = x.to_float_vector(), ws = w.to_float_vector(), bs = b.to_float_vector();
  std::vector<double> y(size_t(M * N));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double acc = bs[size_t(n)];
      for (int64_t k = 0; k < K; ++k) acc += double(xs[size_t(m * K + k)]) * ws[size_t(n * K + k)];
      y[size_t(m * N + n)] = acc;
    }
  return y;
}

TEST(PackedLinear, Bf16MatchesTheExactProductOnAwkwardShapes) {
  NoGradGuard ng;
  for (Shape3 s : kAwkward) {
    SCOPED_TRACE(shape_name(s));
    Tensor x = randn({s.M, s.K}).to(DType::BF16), w = randn({s.N, s.K}).to(DType::BF16),
           b = randn({s.N}).to(DType::BF16);
    Tensor p = pack_linear_weight(w);
    EXPECT_EQ(p.dtype(), DType::BF16);
    EXPECT_EQ(p.numel(), (s.N + 47) / 48 * s.K * 48) << "panels x K x 48 columns, in bf16";
    Tensor y = linear_packed(x, p, s.N, b);
    ASSERT_EQ(y.dtype(), DType::BF16);
    ASSERT_EQ(y.shape(), (Shape{s.M, s.N}));
    // Exact products summed in f32, rounded once to bf16: within half a bf16 ulp (2^-9 relative)
    // plus the f32 sums' error, far below it.
    const std::vector<double> want = reference(x, w, b);
    const std::vector<float> got = y.to_float_vector();
    for (size_t i = 0; i < want.size(); ++i)
      ASSERT_NEAR(got[i], want[i], std::abs(want[i]) / 256 + 1e-4 * s.K) << "element " << i;
    // and close to the matmul path (oneDNN, another order of sums)
    EXPECT_LE(max_rel_diff(y, linear(x, w, b)), 1e-2);
    EXPECT_EQ(pack_linear_weight(w.t().contiguous().t()).to_float_vector(), p.to_float_vector());
  }
  Tensor x = randn({2, 8}), w = randn({4, 8}).to(DType::BF16);
  EXPECT_THROW(linear_packed(x, pack_linear_weight(w), 4), Error) << "f32 input on a bf16 twin";
}

TEST(PackedLinear, ARowIsTheSameBitsInAnyBatchAndThreadCount) {
  for (DType dt : {DType::F32, DType::BF16}) {
    SCOPED_TRACE(dtype_name(dt));
    NoGradGuard ng;
    const int64_t M = 21, N = 200, K = 97;
    Tensor x = randn({M, K}).to(dt), w = randn({N, K}).to(dt);
    Tensor p = pack_linear_weight(w);
    const std::vector<float> all = linear_packed(x, p, N).to_float_vector();
    for (int64_t r = 0; r < M; ++r) {
      const std::vector<float> alone = linear_packed(x.narrow(0, r, 1), p, N).to_float_vector();
      EXPECT_EQ(alone, std::vector<float>(all.begin() + r * N, all.begin() + (r + 1) * N)) << "row " << r;
    }
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    const std::vector<float> one_thread = linear_packed(x, p, N).to_float_vector();
    omp_set_num_threads(threads);
    EXPECT_EQ(one_thread, all);
  }
}

TEST(PackedLinear, LinearUsesItsTwinOnlyWithoutGradientsAndForFewRows) {
  nn::Linear lin(40, 30, true);
  lin.pack();
  ASSERT_TRUE(lin.packed.defined());
  Tensor few = randn({5, 40}), many = randn({nn::Linear::kPackedRows + 1, 40});
  {
    NoGradGuard ng;
    EXPECT_EQ(lin.forward(few).to_float_vector(), linear_packed(few, lin.packed, 30, lin.bias).to_float_vector());
    EXPECT_EQ(lin.forward(many).to_float_vector(), linear(many, lin.weight, lin.bias).to_float_vector());
  }
  // With gradients the ordinary op runs, so backward still works.
  Tensor x = randn({5, 40});
  x.requires_grad_();
  Tensor y = lin.forward(x);
  sum(y).backward();
  EXPECT_TRUE(x.grad().defined());
  EXPECT_THROW(linear_packed(x, lin.packed, 30), Error);
  // A bf16 weight gets a twin where the CPU kernel has AVX512-BF16; an f32 input never uses it.
  nn::Linear half(40, 30, false, DType::BF16);
  half.pack();
  EXPECT_EQ(half.packed.defined(), cpu::packed_bf16_fast());
  if (half.packed.defined()) {
    NoGradGuard ng;
    Tensor xb = few.to(DType::BF16);
    EXPECT_EQ(half.forward(xb).to_float_vector(), linear_packed(xb, half.packed, 30).to_float_vector());
    EXPECT_FALSE(nn::use_packed(half.packed, few));
  }
}

}  // namespace
}  // namespace forge
