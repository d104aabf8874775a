// embedding, rms_norm, rope and dropout: forward kernels and backward rules.
#include "core/autograd.h"
#include "core/ops.h"
#include "core/ops/common.h"
#include "kernels/cpu/layers.h"
#include "kernels/cuda/cuda_backend.h"

namespace forge {
using G = const std::vector<Tensor>&;
using Need = const std::vector<bool>&;

namespace {
// ids as contiguous i64 on `dev`, each checked (on the host) against [0, V).
Tensor checked_ids(const Tensor& ids, int64_t V, const char* op, Device dev) {
  FORGE_CHECK(ids.dtype() == DType::I64 || ids.dtype() == DType::I32, op, ": ids must be i32 or i64, got ",
              dtype_name(ids.dtype()));
  Tensor t = ids.to(DType::I64).to(Device::cpu()).contiguous();
  const int64_t* p = t.data<int64_t>();
  for (int64_t i = 0; i < t.numel(); ++i)
    FORGE_CHECK(p[i] >= 0 && p[i] < V, op, ": id ", p[i], " at position ", i, " is outside [0, ", V, ")");
  return t.to(dev);
}
}  // namespace

Tensor embedding(const Tensor& weight, const Tensor& ids) {
  FORGE_CHECK(weight.dim() == 2, "embedding: weight must be [V, C], got ", shape_str(weight.shape()));
  const int64_t V = weight.size(0), C = weight.size(1);
  const Device dev = weight.device();
  Tensor id = checked_ids(ids, V, "embedding", dev);
  Tensor w = weight.detach();
  if (w.stride(0) != 1 && w.stride(1) != 1) w = w.contiguous();
  Shape os = ids.shape();
  os.push_back(C);
  Tensor out = Tensor::empty(os, weight.dtype(), dev);
  detail::run_kernel(dev, cpu::embedding_fwd, cuda::embedding_fwd, w.dtype(), w.raw_data(), w.stride(0), w.stride(1),
                     id.data<int64_t>(), id.numel(), C, out.raw_data());
  if (needs_grad({weight})) {
    DType wd = weight.dtype();
    record("embedding", {weight}, out, [id, V, C, wd, dev](G g, Need) {
      Tensor gc = g[0].to(dev).contiguous();
      Tensor gw = Tensor::zeros({V, C}, DType::F32, dev);
      detail::run_kernel(dev, cpu::embedding_bwd, cuda::embedding_bwd, gc.dtype(), gc.raw_data(), id.data<int64_t>(),
                         id.numel(), C, gw.data<float>());
      return std::vector<Tensor>{gw.to(wd)};
    });
  }
  return out;
}

Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps, bool unit_offset) {
  const int64_t C = x.size(-1);
  FORGE_CHECK(weight.dim() == 1 && weight.size(0) == C, "rms_norm: weight must be [", C, "], got ",
              shape_str(weight.shape()));
  FORGE_CHECK(is_floating(x.dtype()), "rms_norm: input must be floating");
  const int64_t N = C ? x.numel() / C : 0;
  detail::check_same_device(x, weight, "rms_norm");
  const Device dev = x.device();
  Tensor xs = x.detach().contiguous();
  Tensor ws = weight.detach().to(x.dtype()).contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), dev);
  Tensor rstd = Tensor::empty({N}, DType::F32, dev);
  detail::run_kernel(dev, cpu::rms_norm_fwd, cuda::rms_norm_fwd, x.dtype(), xs.raw_data(), ws.raw_data(), N, C,
                     float(eps), unit_offset, y.raw_data(), rstd.data<float>());
  if (needs_grad({x, weight})) {
    DType wd = weight.dtype();
    record("rms_norm", {x, weight}, y, [xs, ws, rstd, N, C, wd, dev, unit_offset](G g, Need) {
      Tensor gc = g[0].to(xs.dtype()).contiguous();
      Tensor dx = Tensor::empty(xs.shape(), xs.dtype(), dev);
      Tensor dw = Tensor::empty({C}, DType::F32, dev);
      detail::run_kernel(dev, cpu::rms_norm_bwd, cuda::rms_norm_bwd, xs.dtype(), xs.raw_data(), ws.raw_data(),
                         rstd.data<float>(), gc.raw_data(), N, C, unit_offset, dx.raw_data(), dw.data<float>());
      return std::vector<Tensor>{dx, dw.to(wd)};
    });
  }
  return y;
}

namespace {
Tensor rope_apply(const Tensor& x, const Tensor& pos, const Tensor& inv_freq, float sign, float mscale) {
  Tensor xs = x.stride(-1) == 1 ? x : x.contiguous();
  const int64_t B = x.size(0), H = x.size(1), T = x.size(2), D = x.size(3);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  int64_t pos_sb = pos.dim() == 2 ? pos.stride(0) : 0;
  const int64_t R = 2 * inv_freq.size(0);  // rotary dims; the rest pass through
  detail::run_kernel(x.device(), cpu::rope, cuda::rope, x.dtype(), xs.raw_data(), B, H, T, D, R, xs.stride(0),
                     xs.stride(1), xs.stride(2), pos.data<int64_t>(), pos_sb, inv_freq.data<float>(), sign,
                     mscale, y.raw_data());
  return y;
}
}  // namespace

Tensor rope(const Tensor& x, const Tensor& positions, const Tensor& inv_freq, double mscale) {
  FORGE_CHECK(x.dim() == 4, "rope: x must be [B, H, T, D], got ", shape_str(x.shape()));
  const int64_t B = x.size(0), T = x.size(2), D = x.size(3);
  FORGE_CHECK(D % 2 == 0 && D <= 1024, "rope: head dim must be even and at most 1024, got ", D);
  FORGE_CHECK(inv_freq.dim() == 1 && inv_freq.size(0) >= 1 && inv_freq.size(0) <= D / 2,
              "rope: inv_freq must be [R/2] for R rotary dims of ", D, ", got ", shape_str(inv_freq.shape()));
  FORGE_CHECK((positions.dim() == 1 && positions.size(0) == T) ||
                  (positions.dim() == 2 && positions.size(0) == B && positions.size(1) == T),
              "rope: positions must be [", T, "] or [", B, ", ", T, "], got ", shape_str(positions.shape()));
  FORGE_CHECK(is_floating(x.dtype()), "rope: x must be floating");
  Tensor pos = positions.to(DType::I64).to(x.device()).contiguous();
  Tensor freq = inv_freq.to(DType::F32).to(x.device()).contiguous();
  const float m = float(mscale);
  Tensor y = rope_apply(x.detach(), pos, freq, 1.0f, m);
  if (needs_grad({x})) {
    record("rope", {x}, y, [pos, freq, m](G g, Need) {
      return std::vector<Tensor>{rope_apply(g[0], pos, freq, -1.0f, m)};  // m R^T g
    });
  }
  return y;
}

Tensor dropout(const Tensor& x, double p, bool train, Generator* gen) {
  FORGE_CHECK(p >= 0.0 && p < 1.0, "dropout: p must be in [0, 1), got ", p);
  if (!train || p == 0.0) return x;
  const Tensor u = rand(x.shape(), DType::F32, gen, x.device());  // the mask is drawn where x is
  Tensor keep = ge(u, Tensor::scalar(p, DType::F32, x.device())).to(x.dtype());
  return mul(x, mul(keep, 1.0 / (1.0 - p)));
}

}  // namespace forge
