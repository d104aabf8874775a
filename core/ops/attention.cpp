// Causal scaled-dot-product attention with grouped-query heads and packed-document masks,
// computed tile by tile (kernels/cpu/attention.cpp, kernels/cuda/attention.cu); math in f32 for
// every input dtype.
#include <cmath>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/ops/common.h"
#include "kernels/cpu/attention.h"
#include "kernels/cuda/cuda_backend.h"

namespace forge {
using G = const std::vector<Tensor>&;
using Need = const std::vector<bool>&;

namespace {
Tensor f32_rows(const Tensor& t) {
  Tensor r = t.detach().to(DType::F32);
  return r.stride(-1) == 1 ? r : r.contiguous();
}
cpu::AttnStrides strides_of(const Tensor& t) { return {t.stride(0), t.stride(1), t.stride(2)}; }
}  // namespace

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& opt) {
  const Device dev = q.device();
  if (dev.is_cuda() && !cuda::attention_supports(q.size(-1))) {
    detail::note_host_fallback("scaled_dot_product_attention (this head dim)");
    AttentionOptions o = opt;
    if (o.doc_ids.defined()) o.doc_ids = o.doc_ids.to(Device::cpu());
    return scaled_dot_product_attention(q.to(Device::cpu()), k.to(Device::cpu()), v.to(Device::cpu()), o)
        .to(q.device());
  }
  FORGE_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "attention: q, k, v must be [B, H, T, D], got ",
              shape_str(q.shape()), ", ", shape_str(k.shape()), ", ", shape_str(v.shape()));
  const int64_t B = q.size(0), Hq = q.size(1), T = q.size(2), D = q.size(3);
  const int64_t Hkv = k.size(1), S = k.size(2);
  FORGE_CHECK(k.size(0) == B && v.size(0) == B && k.size(3) == D && v.shape() == k.shape(),
              "attention: k and v must be [", B, ", Hkv, S, ", D, "], got ", shape_str(k.shape()), " and ",
              shape_str(v.shape()));
  FORGE_CHECK(Hkv > 0 && Hq % Hkv == 0, "attention: ", Hq, " query heads are not a multiple of ", Hkv, " kv heads");
  FORGE_CHECK(!opt.causal || S >= T, "attention: causal attention needs at least as many keys (", S,
              ") as queries (", T, ")");
  Tensor doc;
  if (opt.doc_ids.defined()) {
    FORGE_CHECK(T == S, "attention: doc_ids need as many keys as queries");
    FORGE_CHECK(opt.doc_ids.dim() == 2 && opt.doc_ids.size(0) == B && opt.doc_ids.size(1) == T,
                "attention: doc_ids must be [", B, ", ", T, "], got ", shape_str(opt.doc_ids.shape()));
    doc = opt.doc_ids.to(DType::I32).to(dev).contiguous();
  }
  FORGE_CHECK(opt.window >= 0 && (opt.window == 0 || opt.causal), "attention: a sliding window needs causal "
              "attention and a size >= 1, got ", opt.window);
  const float scale = float(opt.scale ? *opt.scale : 1.0 / std::sqrt(double(D)));
  FORGE_CHECK(opt.softcap >= 0, "attention: softcap must be >= 0, got ", opt.softcap);
  cpu::AttnShape sh{B,     Hq,         Hkv, T, S, D, scale, opt.causal, doc.defined() ? doc.data<int32_t>() : nullptr,
                    opt.window, float(opt.softcap)};
  Tensor qf = f32_rows(q), kf = f32_rows(k), vf = f32_rows(v);
  Tensor o = Tensor::empty({B, Hq, T, D}, DType::F32, dev);
  Tensor lse = Tensor::empty({B, Hq, T}, DType::F32, dev);
  detail::run_kernel(dev, cpu::attention_fwd, cuda::attention_fwd, sh, qf.data<float>(), strides_of(qf),
                     kf.data<float>(), strides_of(kf), vf.data<float>(), strides_of(vf), o.data<float>(),
                     lse.data<float>());
  Tensor out = o.to(q.dtype());
  if (needs_grad({q, k, v})) {
    DType qd = q.dtype(), kd = k.dtype(), vd = v.dtype();
    // o through detach(): in f32, `out` is o itself, and a node must not own its own output (a
    // reference cycle that leaked every graph not run backward; found by `make test-asan`).
    record("attention", {q, k, v}, out, [sh, qf, kf, vf, o = o.detach(), lse, doc, qd, kd, vd, dev](G g, Need) {
      Tensor go = g[0].to(DType::F32).contiguous();
      cpu::AttnShape s = sh;
      s.doc = doc.defined() ? doc.data<int32_t>() : nullptr;
      Tensor dq = Tensor::empty(qf.shape(), DType::F32, dev);
      Tensor dk = Tensor::empty(kf.shape(), DType::F32, dev);
      Tensor dv = Tensor::empty(vf.shape(), DType::F32, dev);
      detail::run_kernel(dev, cpu::attention_bwd, cuda::attention_bwd, s, qf.data<float>(), strides_of(qf),
                         kf.data<float>(), strides_of(kf), vf.data<float>(), strides_of(vf), o.data<float>(),
                         go.data<float>(), lse.data<float>(), dq.data<float>(), dk.data<float>(), dv.data<float>());
      return std::vector<Tensor>{dq.to(qd), dk.to(kd), dv.to(vd)};
    });
  }
  return out;
}

}  // namespace forge
