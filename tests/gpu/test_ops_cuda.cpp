// The op table on a CUDA device, against the same PyTorch references as the CPU run.
#include <gtest/gtest.h>

#include "kernels/cuda/cuda_backend.h"
#include "tests/support/op_table.h"

namespace forge::test {
namespace {

TEST(OpTableCuda, MatchesPyTorchOnGpu) {
  if (!cuda::available()) GTEST_SKIP() << "no GPU: " << cuda::status();
  for (const OpCase& c : load_op_cases(reference_path())) {
    SCOPED_TRACE(c.name);
    OpResult r = run_case(c, Device::cuda(0));
    EXPECT_EQ(r.out.device(), Device::cuda(0));
    double rtol = default_rtol(c);
    EXPECT_EQ(compare(r.out, c.out, rtol), "") << c.name << ": output";
    for (size_t i = 0; i < c.grads.size(); ++i) {
      if (!c.grads[i].defined()) continue;
      EXPECT_EQ(compare(r.grads[i], c.grads[i], rtol), "") << c.name << ": gradient of input " << i;
    }
  }
}

TEST(CudaTensor, RoundTripAndGemm) {
  if (!cuda::available()) GTEST_SKIP() << "no GPU: " << cuda::status();
  Tensor a = randn({64, 48}), b = randn({48, 32});
  Tensor ga = a.to(Device::cuda(0)), gb = b.to(Device::cuda(0));
  EXPECT_EQ(compare(ga.to(Device::cpu()), a, 0), "");
  EXPECT_EQ(compare(matmul(ga, gb).to(Device::cpu()), matmul(a, b), 1e-5), "");
  EXPECT_EQ(compare(matmul(ga.to(DType::BF16), gb.to(DType::BF16)).to(Device::cpu()),
                    matmul(a.to(DType::BF16), b.to(DType::BF16)), 2e-2),
            "");
  size_t before = cuda::bytes_in_use(0);
  { Tensor big = Tensor::empty({1 << 20}, DType::F32, Device::cuda(0)); }
  EXPECT_EQ(cuda::bytes_in_use(0), before) << "the caching allocator must account for freed blocks";
}

}  // namespace
}  // namespace forge::test
