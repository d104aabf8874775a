// The simulated CUDA device (kernels/sim/): CTest runs this suite with FORGE_SIMULATE_CUDA=2, so
// that every caller's CUDA path runs in CI. Here: its memory is out of the host's reach, kernels
// refuse host memory and other devices' memory, copies are counted and checked, and a device
// count past the simulated ones is a clear error.
#include <gtest/gtest.h>

#include <cmath>

#include "core/device_stats.h"
#include "core/ops.h"
#include "kernels/cuda/cuda_backend.h"

namespace forge {
namespace {

#define REQUIRE_SIMULATED() \
  if (!cuda::simulated()) GTEST_SKIP() << "runs with FORGE_SIMULATE_CUDA set (CTest's *.sim tests)"

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(SimulatedCuda, IsWhatTheInterfaceReports) {
  REQUIRE_SIMULATED();
  EXPECT_TRUE(cuda::available());
  EXPECT_EQ(cuda::device_count(), 2);
  EXPECT_NE(cuda::status().find("simulated"), std::string::npos) << cuda::status();
  EXPECT_NE(error_of([] { Tensor::ones({4}).to(Device::cuda(2)); }).find("2 simulated device(s)"), std::string::npos);
}

TEST(SimulatedCudaDeathTest, HostCodeTouchingDeviceMemoryFaults) {
  REQUIRE_SIMULATED();
  Tensor x = Tensor::ones({16}).to(Device::cuda(0));
  EXPECT_DEATH({ volatile float v = x.data<float>()[3]; (void)v; }, "host code read or wrote a CUDA tensor");
}

TEST(SimulatedCuda, KernelsRefuseHostMemoryAndOtherDevices) {
  REQUIRE_SIMULATED();
  Tensor host = Tensor::ones({8});
  Tensor dev = Tensor::ones({8}).to(Device::cuda(0));
  Tensor other = Tensor::ones({8}).to(Device::cuda(1));
  const int64_t shape[1] = {8}, stride[1] = {1};
  EXPECT_NE(error_of([&] {
              cuda::unary(UnaryOp::Neg, DType::F32, 1, shape, dev.raw_data(), stride, host.raw_data(), stride, 0, 0);
            }).find("given host memory"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              cuda::unary(UnaryOp::Neg, DType::F32, 1, shape, dev.raw_data(), stride, other.raw_data(), stride, 0, 0);
            }).find("memory of cuda:1"),
            std::string::npos);
  EXPECT_NE(error_of([&] { cuda::copy_h2d(dev.raw_data(), dev.raw_data(), 4, 0); }).find("device memory where host"),
            std::string::npos);
  EXPECT_NE(error_of([] { cuda::synchronize(5); }).find("cuda:5 requested"), std::string::npos);
}

TEST(SimulatedCuda, CountsCopiesAndGivesTheCpuResults) {
  REQUIRE_SIMULATED();
  Tensor a = randn({32, 24}), b = randn({24, 16});
  const DeviceStats before = device_stats();
  Tensor ga = a.to(Device::cuda(0)), gb = b.to(Device::cuda(0));
  Tensor c = sum(silu(matmul(ga, gb)));
  const double got = c.item();
  const DeviceStats used = device_stats() - before;
  EXPECT_EQ(used.h2d, 2);
  EXPECT_EQ(used.h2d_bytes, int64_t((32 * 24 + 24 * 16) * sizeof(float)));
  EXPECT_EQ(used.d2h, 1);
  EXPECT_EQ(used.d2h_bytes, int64_t(sizeof(float)));
  EXPECT_EQ(used.host_fallbacks, 0);
  EXPECT_EQ(got, sum(silu(matmul(a, b))).item()) << "the same CPU kernels give the same bits";
}

TEST(SimulatedCuda, FreshMemoryIsNanAndFreedMemoryIsAccounted) {
  REQUIRE_SIMULATED();
  const size_t before = cuda::bytes_in_use(1);
  {
    Tensor e = Tensor::empty({5}, DType::F32, Device::cuda(1));
    EXPECT_EQ(cuda::bytes_in_use(1), before + 5 * sizeof(float));
    for (float v : e.to_float_vector()) EXPECT_TRUE(std::isnan(v));
  }
  EXPECT_EQ(cuda::bytes_in_use(1), before);
  EXPECT_GE(cuda::bytes_peak(1), before + 5 * sizeof(float));
}

}  // namespace
}  // namespace forge
