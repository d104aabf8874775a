// The optimiser step against PyTorch (tests/reference/optim_reference.py): clip_grad_norm then
// AdamW, three steps, for f32 parameters and for bf16 parameters with f32 masters, on the CPU and
// on a CUDA device when there is one (CTest's *.sim run simulates it): the fused kernels
// (adamw_step_, sum_squares) must give torch's norms and weights.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>

#include "core/hdf5_io.h"
#include "kernels/cuda/cuda_backend.h"
#include "tests/support/test_util.h"
#include "train/optimizer.h"

namespace forge::train {
namespace {

struct Reference {
  std::map<std::string, Tensor> t;
  std::vector<float> hyper;  // lr, beta1, beta2, eps, weight_decay, max_norm, steps, params
  double attr(const std::string& k) const {
    static const std::vector<std::string> names = {"lr", "beta1", "beta2", "eps", "weight_decay", "max_norm", "steps",
                                                   "params"};
    return hyper.at(size_t(std::find(names.begin(), names.end(), k) - names.begin()));
  }
};

const Reference& reference() {
  static const Reference r = [] {
    const char* path = std::getenv("FORGE_OPTIM_REFERENCE");
    if (!path) throw std::runtime_error("FORGE_OPTIM_REFERENCE is not set (CTest runs the oracle first)");
    Reference ref{load_hdf5(path), {}};
    ref.hyper = ref.t.at("hyper").to_float_vector();
    return ref;
  }();
  return r;
}

// Runs the reference's steps with parameters of dtype on dev; checks norms and weights.
void check(DType dtype, Device dev, double tol) {
  const Reference& ref = reference();
  const int n = int(ref.attr("params")), steps = int(ref.attr("steps"));
  std::vector<Tensor> params;
  for (int i = 0; i < n; ++i) params.push_back(ref.t.at("init_" + std::to_string(i)).to(dtype).to(dev).clone());
  AdamW opt(params, {.lr = ref.attr("lr"), .beta1 = ref.attr("beta1"), .beta2 = ref.attr("beta2"),
                     .eps = ref.attr("eps"), .weight_decay = ref.attr("weight_decay")});
  for (int s = 0; s < steps; ++s) {
    const std::string st = std::to_string(s);
    for (int i = 0; i < n; ++i)  // a copy: clipping scales gradients in place
      params[size_t(i)].set_grad(ref.t.at("grad_" + st + "_" + std::to_string(i)).to(dtype).to(dev).clone());
    const double norm = clip_grad_norm(params, ref.attr("max_norm"));
    EXPECT_NEAR(norm, ref.t.at("norm_" + st).item(), 1e-6 * norm) << "step " << s;
    opt.step();
    opt.zero_grad();
    for (int i = 0; i < n; ++i) {
      const Tensor want = ref.t.at("want_" + st + "_" + std::to_string(i));
      // bf16 parameters hold their f32 master rounded: compare with the reference rounded alike.
      const Tensor w = dtype == DType::F32 ? want : want.to(dtype).to(DType::F32);
      EXPECT_LE(testing::rel_error(params[size_t(i)].to(Device::cpu()).to(DType::F32), w), tol)
          << dtype_name(dtype) << " on " << dev.str() << ", step " << s << ", parameter " << i;
    }
  }
}

TEST(OptimizerParity, ClipAndAdamWEqualPyTorchOnTheCpu) {
  check(DType::F32, Device::cpu(), 3e-7);
  check(DType::BF16, Device::cpu(), 8e-3);  // a bf16 ulp where the master's rounding lands on the other side
}

TEST(OptimizerParity, ClipAndAdamWEqualPyTorchOnTheDevice) {
  if (!cuda::available()) GTEST_SKIP() << "no CUDA device (CTest's *.sim run simulates one): " << cuda::status();
  check(DType::F32, Device::cuda(0), 3e-7);
  check(DType::BF16, Device::cuda(0), 8e-3);
}

}  // namespace
}  // namespace forge::train
