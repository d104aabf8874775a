// softmax, log_softmax and cross-entropy (fused log-softmax + NLL, f32 accumulation).
#include "core/autograd.h"
#include "core/ops.h"
#include "core/ops/common.h"
#include "kernels/cpu/softmax.h"
#include "kernels/cuda/cuda_backend.h"

namespace forge {
using G = const std::vector<Tensor>&;
using Need = const std::vector<bool>&;

namespace {
Tensor softmax_impl(const Tensor& x, int64_t dim, bool log) {
  FORGE_CHECK(is_floating(x.dtype()), "softmax needs a floating tensor, got ", dtype_name(x.dtype()));
  dim = detail::wrap_dim(dim, x.dim());
  if (x.dim() == 0) return softmax_impl(x.reshape({1}), 0, log).reshape({});
  Tensor xl = x.detach().transpose(dim, -1).contiguous();
  Tensor yl = Tensor::empty(xl.shape(), x.dtype(), x.device());
  int64_t V = xl.size(-1), N = V ? xl.numel() / V : 0;
  detail::run_kernel(x.device(), cpu::softmax_rows, cuda::softmax_rows, x.dtype(), xl.raw_data(), yl.raw_data(), N, V,
                     log);
  return yl.transpose(dim, -1);
}
}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) {
  Tensor y = softmax_impl(x, dim, false);
  if (needs_grad({x})) {
    Tensor ys = y.detach();
    record("softmax", {x}, y, [ys, dim](G g, Need) {
      Tensor gy = mul(g[0], ys);
      return std::vector<Tensor>{sub(gy, mul(ys, sum(gy, {dim}, true)))};
    });
  }
  return y;
}

Tensor log_softmax(const Tensor& x, int64_t dim) {
  Tensor y = softmax_impl(x, dim, true);
  if (needs_grad({x})) {
    Tensor ys = y.detach();
    record("log_softmax", {x}, y, [ys, dim](G g, Need) {
      return std::vector<Tensor>{sub(g[0], mul(exp(ys), sum(g[0], {dim}, true)))};
    });
  }
  return y;
}

Tensor cross_entropy(const Tensor& logits, const Tensor& target, int64_t ignore_index, Reduction reduction) {
  FORGE_CHECK(logits.dim() == 2, "cross_entropy: logits must be [N, V], got ", shape_str(logits.shape()));
  FORGE_CHECK(target.dim() == 1 && target.size(0) == logits.size(0), "cross_entropy: target must be [",
              logits.size(0), "], got ", shape_str(target.shape()));
  FORGE_CHECK(target.dtype() == DType::I64 || target.dtype() == DType::I32,
              "cross_entropy: target must be i32 or i64, got ", dtype_name(target.dtype()));
  FORGE_CHECK(is_floating(logits.dtype()), "cross_entropy: logits must be floating");
  const int64_t N = logits.size(0), V = logits.size(1);
  const Device dev = logits.device();
  Tensor x = logits.detach().contiguous();
  Tensor t = target.to(DType::I64).to(dev).contiguous();
  Tensor rows = Tensor::empty({N}, DType::F32, dev), lse = Tensor::empty({N}, DType::F32, dev);
  const int64_t bad = detail::run_kernel(dev, cpu::cross_entropy_fwd, cuda::cross_entropy_fwd, x.dtype(), x.raw_data(),
                                         t.data<int64_t>(), N, V, ignore_index, rows.data<float>(), lse.data<float>());
  FORGE_CHECK(bad < 0, "cross_entropy: target ", t.narrow(0, std::max<int64_t>(bad, 0), 1).item(), " at row ", bad,
              " is outside [0, ", V, ") and is not ignore_index ", ignore_index);
  // Only the mean needs the count of targets (a copy back from a device); a sum does not.
  int64_t count = 0;
  if (reduction == Reduction::Mean) {
    const Tensor th = t.to(Device::cpu());
    for (int64_t n = 0; n < N; ++n) count += th.data<int64_t>()[n] != ignore_index;
  }

  Tensor out;
  {
    NoGradGuard ng;
    if (reduction == Reduction::None) out = rows;
    else {
      out = sum(rows);
      if (reduction == Reduction::Mean) out = mul(out, 1.0 / double(count));  // NaN-free only if count > 0
    }
  }
  if (reduction == Reduction::Mean && count == 0) out.fill_(std::nan(""));
  if (needs_grad({logits})) {
    record("cross_entropy", {logits}, out, [x, t, lse, count, ignore_index, reduction, N, V](G g, Need) {
      // The upstream gradient per row, kept on the device (a reduction's scalar broadcast to N).
      Tensor scale = g[0].to(DType::F32).to(x.device());
      if (reduction == Reduction::Mean) scale = mul(scale, 1.0 / double(count));
      if (reduction != Reduction::None) scale = scale.reshape({1}).expand({N});
      scale = scale.contiguous();
      Tensor dx = Tensor::empty({N, V}, x.dtype(), x.device());
      detail::run_kernel(x.device(), cpu::cross_entropy_bwd, cuda::cross_entropy_bwd, x.dtype(), x.raw_data(),
                         t.data<int64_t>(), lse.data<float>(), scale.data<float>(), N, V, ignore_index, dx.raw_data());
      return std::vector<Tensor>{dx};
    });
  }
  return out;
}

}  // namespace forge
