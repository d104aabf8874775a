// Tensor basics: views share storage, layouts, dtype conversions, random numbers, printing, HDF5.
#include <gtest/gtest.h>

#include <filesystem>

#include <cstdio>

#include "core/hdf5_io.h"
#include "kernels/cuda/cuda_backend.h"
#include "core/ops.h"
#include "kernels/philox.h"
#include "tests/support/op_table.h"

namespace forge {
namespace {

TEST(Tensor, ViewsShareStorageAndHaveStrides) {
  Tensor x = Tensor::arange(24, DType::F32).view({2, 3, 4});
  Tensor t = x.transpose(0, 2);
  EXPECT_EQ(t.shape(), (Shape{4, 3, 2}));
  EXPECT_EQ(t.strides(), (Shape{1, 4, 12}));
  EXPECT_FALSE(t.is_contiguous());
  EXPECT_EQ(t.raw_data(), x.raw_data());
  Tensor n = x.narrow(2, 1, 2);
  EXPECT_EQ(n.offset(), 1);
  EXPECT_EQ(n.to_float_vector()[2], 5.0f);
  Tensor e = Tensor::arange(3, DType::F32).view({3, 1}).expand({3, 4});
  EXPECT_EQ(e.strides(), (Shape{1, 0}));
  EXPECT_EQ(e.contiguous().to_float_vector()[5], 1.0f);
  x.select(0, 1).fill_(-1);  // writes through the view
  EXPECT_EQ(x.to_float_vector()[12], -1.0f);
  EXPECT_EQ(x.permute({2, 0, 1}).contiguous().shape(), (Shape{4, 2, 3}));
  EXPECT_THROW(t.view({24}), Error) << "a transposed tensor cannot be viewed flat";
  EXPECT_EQ(t.reshape({24}).numel(), 24);
}

TEST(Tensor, DtypeConversionsRoundToNearestEven) {
  Tensor x = Tensor::from_floats({1.0f, 1.00390625f, 1.01171875f, 3.14159f, -65504.0f, 1e-8f, 70000.0f}, {7});
  std::vector<float> b = x.to(DType::BF16).to(DType::F32).to_float_vector();
  EXPECT_EQ(b[1], 1.0f);        // halfway between 1 and 1+2^-7: ties to even
  EXPECT_EQ(b[2], 1.015625f);   // halfway, rounds up to even
  EXPECT_EQ(b[3], 3.140625f);
  std::vector<float> h = x.to(DType::F16).to(DType::F32).to_float_vector();
  EXPECT_EQ(h[3], 3.140625f);
  EXPECT_EQ(h[4], -65504.0f);
  EXPECT_NEAR(h[5], 1e-8f, 6e-8f);  // subnormal range
  EXPECT_TRUE(std::isinf(h[6]));
  Tensor i = Tensor::from_floats({-2.7f, 3.9f}, {2}).to(DType::I64);
  EXPECT_EQ(i.to_vector<int64_t>(), (std::vector<int64_t>{-2, 3}));
}

TEST(Random, PhiloxMatchesRandom123TestVectors) {
  Philox4 r = philox4x32_raw(0, 0, 0, 0, 0, 0);
  EXPECT_EQ(r.v[0], 0x6627e8d5u);
  EXPECT_EQ(r.v[1], 0xe169c58du);
  EXPECT_EQ(r.v[2], 0xbc57ac4cu);
  EXPECT_EQ(r.v[3], 0x9b00dbd8u);
  r = philox4x32_raw(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u);
  EXPECT_EQ(r.v[0], 0xd16cfe09u);
  EXPECT_EQ(r.v[1], 0x94fdccebu);
  EXPECT_EQ(r.v[2], 0x5001e420u);
  EXPECT_EQ(r.v[3], 0x24126ea1u);
}

TEST(Random, SeededDrawsAreReproducibleAndNormal) {
  manual_seed(42);
  Tensor a = randn({10000});
  manual_seed(42);
  Tensor b = randn({10000});
  EXPECT_EQ(test::compare(a, b, 0), "");
  std::vector<float> v = a.to_float_vector();
  double m = 0, s = 0;
  for (float f : v) m += f;
  m /= double(v.size());
  for (float f : v) s += (f - m) * (f - m);
  s = std::sqrt(s / double(v.size()));
  EXPECT_NEAR(m, 0.0, 0.03);
  EXPECT_NEAR(s, 1.0, 0.03);
  Generator g(5);
  Tensor u = rand({1000}, DType::F32, &g);
  for (float f : u.to_float_vector()) EXPECT_TRUE(f >= 0.0f && f < 1.0f);
}

TEST(Random, DropoutKeepsExpectationAndRoutesGradient) {
  manual_seed(3);
  Tensor x = Tensor::ones({20000}).requires_grad_();
  Tensor y = dropout(x, 0.25);
  double kept = 0, total = 0;
  for (float f : y.to_float_vector()) {
    kept += f != 0.0f;
    total += f;
  }
  EXPECT_NEAR(kept / 20000.0, 0.75, 0.02);
  EXPECT_NEAR(total / 20000.0, 1.0, 0.03);
  sum(y).backward();
  EXPECT_EQ(test::compare(x.grad(), y.detach(), 1e-6), "") << "gradient flows through kept elements only";
  EXPECT_TRUE(dropout(x, 0.5, /*train=*/false).same(x));
}

TEST(Tensor, PrintingIsReadable) {
  Tensor x = Tensor::arange(6, DType::F32).view({2, 3});
  std::string s = to_string(x);
  EXPECT_NE(s.find("dtype=f32"), std::string::npos) << s;
  EXPECT_NE(s.find("shape=[2, 3]"), std::string::npos) << s;
  EXPECT_NE(s.find("5"), std::string::npos) << s;
  std::string big = to_string(Tensor::zeros({100}));
  EXPECT_NE(big.find("..."), std::string::npos) << big;
}

TEST(Tensor, ErrorsNameTheProblem) {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4, 3});
  try {
    add(a, b);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[2, 3]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(matmul(a, a), Error);
  EXPECT_THROW(embedding(randn({5, 2}), Tensor::from_vector<int64_t>({7}, {1})), Error);
  EXPECT_THROW(cross_entropy(randn({2, 5}), Tensor::from_vector<int64_t>({1, 9}, {2})), Error);
}

TEST(Hdf5, RoundTripKeepsEveryDtype) {
  std::string path = ::testing::TempDir() + "forge_roundtrip.h5";
  std::map<std::string, Tensor> m{{"a/f32", randn({3, 4})},
                                  {"a/bf16", randn({5}).to(DType::BF16)},
                                  {"b/i64", Tensor::arange(7)},
                                  {"u8", Tensor::ones({2}, DType::U8)}};
  save_hdf5(path, m);
  auto back = load_hdf5(path);
  ASSERT_EQ(back.size(), m.size());
  for (auto& [k, t] : m) {
    EXPECT_EQ(back[k].dtype(), t.dtype()) << k;
    EXPECT_EQ(test::compare(back[k], t, 0), "") << k;
  }
  check_hdf5_seal(path);
  FILE* f = std::fopen(path.c_str(), "r+b");
  std::fseek(f, 512, SEEK_SET);  // HDF5's superblock, after the seal
  std::fputs("garbage!", f);
  std::fclose(f);
  try {
    load_hdf5(path);
    FAIL() << "corrupt file must be an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

// The seal catches what libhdf5 must never see: a flipped byte, a cut or grown file, a file without one.
TEST(Hdf5, SealNamesAlteredTruncatedAndUnsealedFiles) {
  const std::string path = ::testing::TempDir() + "forge_sealed.h5";
  save_hdf5(path, {{"w", randn({64, 16})}}, {{"step", "3"}});
  check_hdf5_seal(path);
  auto expect_refused = [&](const char* why) {
    try {
      check_hdf5_seal(path);
      ADD_FAILURE() << "accepted a file that is " << why;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path + ": "), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  };
  const auto size = std::filesystem::file_size(path);
  FILE* f = std::fopen(path.c_str(), "r+b");
  std::fseek(f, long(size / 2), SEEK_SET);
  const int c = std::fgetc(f);
  std::fseek(f, long(size / 2), SEEK_SET);
  std::fputc(c ^ 0x10, f);
  std::fclose(f);
  expect_refused("corrupt");
  std::filesystem::resize_file(path, size - 100);
  expect_refused("truncated");
  // A file from another program (h5py writes none): refused by the check, still read by load_hdf5.
  std::string bytes(512, '\0');
  f = std::fopen(path.c_str(), "wb");
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
  expect_refused("no Forge seal");
}

}  // namespace
}  // namespace forge

namespace forge {
namespace {
TEST(Tensor, CudaWithoutAGpuIsAClearError) {
  if (cuda::available()) GTEST_SKIP() << "this machine has a GPU; the GPU suite covers it";
  try {
    Tensor::ones({4}).to(Device::cuda(0));
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    std::string msg = e.what();
    EXPECT_TRUE(msg.find("CUDA") != std::string::npos) << msg;
  }
}
}  // namespace
}  // namespace forge
