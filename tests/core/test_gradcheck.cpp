// Finite differences as a second oracle: central differences in f32 on random inputs.
#include <gtest/gtest.h>

#include <functional>

#include "core/ops.h"

namespace forge {
namespace {

// Checks d(sum(f(x) * r))/dx against central differences at a sample of elements.
void gradcheck(const std::function<Tensor(const Tensor&)>& f, Tensor x0, double eps = 1e-2, double tol = 2e-2) {
  Tensor x = x0.detach().requires_grad_();
  Tensor y = f(x);
  Tensor r = randn(y.shape());
  sum(mul(y, r)).backward();
  std::vector<float> analytic = x.grad().to_float_vector();
  Tensor probe = x0.detach().clone();
  float* p = probe.data<float>();
  double maxg = 1e-3;
  for (float g : analytic) maxg = std::max(maxg, double(std::abs(g)));
  int64_t n = probe.numel(), step = std::max<int64_t>(1, n / 40);
  for (int64_t i = 0; i < n; i += step) {
    float orig = p[i];
    p[i] = orig + float(eps);
    double up = sum(mul(f(probe), r)).item();
    p[i] = orig - float(eps);
    double down = sum(mul(f(probe), r)).item();
    p[i] = orig;
    double numeric = (up - down) / (2 * eps);
    EXPECT_NEAR(analytic[i], numeric, tol * maxg) << "element " << i;
  }
}

TEST(GradCheck, RmsNorm) {
  Tensor w = add(randn({16}), 1.0);
  gradcheck([&](const Tensor& x) { return rms_norm(x, w, 1e-5); }, randn({3, 16}));
}

TEST(GradCheck, AttentionWithDocuments) {
  AttentionOptions o;
  o.doc_ids = Tensor::from_vector<int32_t>({0, 0, 0, 1, 1, 1, 1, 2, 2, 2}, {1, 10});
  Tensor k = randn({1, 1, 10, 8}), v = randn({1, 1, 10, 8});
  gradcheck([&](const Tensor& q) { return scaled_dot_product_attention(q, k, v, o); }, randn({1, 2, 10, 8}));
}

TEST(GradCheck, CrossEntropyAndSoftmax) {
  Tensor t = Tensor::from_vector<int64_t>({1, -100, 4, 0}, {4});
  gradcheck([&](const Tensor& x) { return cross_entropy(x, t); }, randn({4, 6}));
  gradcheck([&](const Tensor& x) { return softmax(x, 0); }, randn({5, 3}));
}

TEST(GradCheck, SiluGeluAndRope) {
  gradcheck([](const Tensor& x) { return silu(x); }, randn({20}));
  gradcheck([](const Tensor& x) { return gelu(x); }, randn({20}));
  Tensor pos = Tensor::from_vector<int64_t>({3, 9, 27}, {3});
  Tensor inv = Tensor::from_floats({1.0f, 0.1f}, {2});
  gradcheck([&](const Tensor& x) { return rope(x, pos, inv); }, randn({1, 2, 3, 4}));
}

}  // namespace
}  // namespace forge
