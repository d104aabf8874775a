// matmul (batched, broadcast, transposed operands without copies) and linear, with backward.
#include "core/autograd.h"
#include "core/ops.h"
#include "core/ops/common.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/packed_gemm.h"
#include "kernels/cuda/cuda_backend.h"

namespace forge {
using G = const std::vector<Tensor>&;
using Need = const std::vector<bool>&;

namespace {
struct MatLayout {
  bool trans = false;
  int64_t ld = 0;
  bool ok = false;
};

// How a [rows, cols] matrix with these strides can be handed to a row-major GEMM.
MatLayout layout_of(int64_t rows, int64_t cols, int64_t s_row, int64_t s_col) {
  if (s_col == 1 && (rows == 1 || s_row >= cols)) return {false, std::max<int64_t>({s_row, cols, 1}), true};
  if (s_row == 1 && (cols == 1 || s_col >= rows)) return {true, std::max<int64_t>({s_col, rows, 1}), true};
  return {};
}

// out[batch..., M, N] = a[batch..., M, K] @ b[batch..., K, N] (+ beta * out); a, b already expanded
// to the batch shape of out (stride 0 where broadcast). Any strides; copies only when a matrix
// has no unit stride.
void gemm_into(Tensor a, Tensor b, const Tensor& out, float beta) {
  const int64_t nd = out.dim();
  const int64_t M = out.size(-2), N = out.size(-1), K = a.size(-1);
  MatLayout la = layout_of(M, K, a.stride(-2), a.stride(-1));
  if (!la.ok) {
    a = a.contiguous();
    la = layout_of(M, K, a.stride(-2), a.stride(-1));
  }
  MatLayout lb = layout_of(K, N, b.stride(-2), b.stride(-1));
  if (!lb.ok) {
    b = b.contiguous();
    lb = layout_of(K, N, b.stride(-2), b.stride(-1));
  }
  FORGE_CHECK(out.stride(-1) == 1, "internal: gemm output must have unit column stride");
  const int64_t ldc = std::max<int64_t>(out.stride(-2), N);
  int64_t batch = 1;
  for (int64_t d = 0; d < nd - 2; ++d) batch *= out.size(d);
  const DType dt = a.dtype();
  const size_t es = dtype_size(dt), os = dtype_size(out.dtype());

  auto offsets = [&](int64_t i, int64_t& oa, int64_t& ob, int64_t& oc) {
    oa = ob = oc = 0;
    for (int64_t d = nd - 3; d >= 0; --d) {
      int64_t idx = i % out.size(d);
      i /= out.size(d);
      oa += idx * a.stride(d);
      ob += idx * b.stride(d);
      oc += idx * out.stride(d);
    }
  };

  if (out.device().is_cuda()) {
    for (int64_t i = 0; i < batch; ++i) {
      int64_t oa, ob, oc;
      offsets(i, oa, ob, oc);
      cuda::gemm(dt, out.dtype(), la.trans, lb.trans, M, N, K, 1.0f, static_cast<char*>(a.raw_data()) + oa * es, la.ld,
                 0, static_cast<char*>(b.raw_data()) + ob * es, lb.ld, 0, beta,
                 static_cast<char*>(out.raw_data()) + oc * os, ldc, 0, 1, out.device().index);
    }
    return;
  }
  FORGE_CHECK(dt == DType::F32 || dt == DType::BF16, "internal: CPU gemm on ", dtype_name(dt));
  // bf16 accumulates into an f32 buffer, then rounds once.
  Tensor acc = out.dtype() == DType::F32 ? out : Tensor::empty({M, N}, DType::F32);
  for (int64_t i = 0; i < batch; ++i) {
    int64_t oa, ob, oc;
    offsets(i, oa, ob, oc);
    float* c = acc.same(out) ? out.data<float>() + oc : acc.data<float>();
    int64_t ldc_i = acc.same(out) ? ldc : N;
    if (!acc.same(out) && beta != 0.0f) {
      acc.copy_(out.dim() == 2 ? out : out.flatten(0, nd - 3).select(0, i));
    }
    if (dt == DType::F32)
      cpu::gemm_f32(la.trans, lb.trans, M, N, K, 1.0f, a.data<float>() + oa, la.ld, b.data<float>() + ob, lb.ld,
                    beta, c, ldc_i);
    else
      cpu::gemm_bf16(la.trans, lb.trans, M, N, K, 1.0f, a.data<bf16>() + oa, la.ld, b.data<bf16>() + ob, lb.ld,
                     beta, c, ldc_i);
    if (!acc.same(out)) (out.dim() == 2 ? out : out.flatten(0, nd - 3).select(0, i)).copy_(acc);
  }
}

// The compute dtype of a product: f16 on the CPU goes through f32 (no f16 GEMM there).
DType gemm_dtype(DType a, DType b, Device dev) {
  DType t = promote(a, b);
  FORGE_CHECK(is_floating(t), "matmul needs floating tensors, got ", dtype_name(a), " and ", dtype_name(b));
  if (dev.is_cpu() && t == DType::F16) return DType::F32;
  return t;
}

Tensor matmul_forward(const Tensor& a0, const Tensor& b0) {
  DType ct = gemm_dtype(a0.dtype(), b0.dtype(), a0.device());
  Tensor a = a0.detach().to(ct), b = b0.detach().to(ct);
  Shape ba(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  Shape batch = detail::broadcast_shapes(ba, bb);
  Shape sa = batch, sb = batch, so = batch;
  sa.insert(sa.end(), {a.size(-2), a.size(-1)});
  sb.insert(sb.end(), {b.size(-2), b.size(-1)});
  so.insert(so.end(), {a.size(-2), b.size(-1)});
  DType od = promote(a0.dtype(), b0.dtype());
  Tensor out = Tensor::empty(so, ct, a.device());
  if (out.numel() > 0) {
    if (a.size(-1) == 0) out.zero_();
    else gemm_into(a.expand(sa), b.expand(sb), out, 0.0f);
  }
  return out.dtype() == od ? out : out.to(od);
}
}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  FORGE_CHECK(a.dim() >= 2 && b.dim() >= 2, "matmul: operands need at least 2 dims, got ", shape_str(a.shape()),
              " and ", shape_str(b.shape()));
  FORGE_CHECK(a.size(-1) == b.size(-2), "matmul: inner dimensions differ: ", shape_str(a.shape()), " @ ",
              shape_str(b.shape()));
  detail::check_same_device(a, b, "matmul");
  // [..., M, K] @ [K, N]: one GEMM over all rows.
  if (b.dim() == 2 && a.dim() > 2) {
    Shape os(a.shape().begin(), a.shape().end() - 1);
    os.push_back(b.size(1));
    return matmul(a.reshape({-1, a.size(-1)}), b).view(os);
  }
  Tensor out = matmul_forward(a, b);
  if (needs_grad({a, b})) {
    Tensor as = a.detach(), bs = b.detach();
    record("matmul", {a, b}, out, [as, bs](G g, Need n) {
      Tensor ga, gb;
      if (n[0]) ga = detail::sum_to(matmul(g[0], bs.transpose(-1, -2)), as.shape()).to(as.dtype());
      if (n[1]) gb = detail::sum_to(matmul(as.transpose(-1, -2), g[0]), bs.shape()).to(bs.dtype());
      return std::vector<Tensor>{ga, gb};
    });
  }
  return out;
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  FORGE_CHECK(w.dim() == 2, "linear: weight must be [out, in], got ", shape_str(w.shape()));
  FORGE_CHECK(x.dim() >= 1 && x.size(-1) == w.size(1), "linear: input ", shape_str(x.shape()),
              " does not match weight ", shape_str(w.shape()), " (expected last dim ", w.size(1), ")");
  FORGE_CHECK(!b.defined() || (b.dim() == 1 && b.size(0) == w.size(0)), "linear: bias must be [", w.size(0),
              "], got ", shape_str(b.shape()));
  detail::check_same_device(x, w, "linear");
  Shape os(x.shape().begin(), x.shape().end() - 1);
  os.push_back(w.size(0));
  DType ct = gemm_dtype(x.dtype(), w.dtype(), x.device());
  Tensor x2 = x.detach().reshape({-1, x.size(-1)}).to(ct);
  Tensor wt = w.detach().to(ct).t();
  Tensor y = Tensor::empty({x2.size(0), w.size(0)}, ct, x.device());
  float beta = 0.0f;
  if (b.defined()) {
    y.copy_(b.detach());
    beta = 1.0f;
  }
  if (y.numel() > 0) gemm_into(x2, wt, y, beta);
  DType od = promote(x.dtype(), w.dtype());
  Tensor out = (y.dtype() == od ? y : y.to(od)).view(os);
  if (needs_grad({x, w, b})) {
    Tensor xs = x.detach(), ws = w.detach();
    record("linear", {x, w, b}, out, [xs, ws](G g, Need n) {
      Tensor g2 = g[0].reshape({-1, ws.size(0)});
      Tensor gx, gw, gb;
      if (n[0]) gx = matmul(g2, ws).view(xs.shape()).to(xs.dtype());
      if (n[1]) gw = matmul(g2.t(), xs.reshape({-1, xs.size(-1)})).to(ws.dtype());
      if (n[2]) gb = sum(g2, {0});
      return std::vector<Tensor>{gx, gw, gb};
    });
  }
  return out;
}

Tensor pack_linear_weight(const Tensor& w) {
  FORGE_CHECK(w.dim() == 2 && (w.dtype() == DType::F32 || w.dtype() == DType::BF16) && w.device().is_cpu(),
              "pack_linear_weight: needs an f32 or bf16 [out, in] weight on the CPU, got ", dtype_name(w.dtype()), " ",
              shape_str(w.shape()));
  const int64_t N = w.size(0), K = w.size(1);
  Tensor rows = w.detach().contiguous();
  Tensor p = Tensor::empty({cpu::packed_elems(N, K)}, w.dtype());
  if (w.dtype() == DType::BF16) cpu::pack_panels(rows.data<bf16>(), K, N, K, p.data<bf16>());
  else cpu::pack_panels(rows.data<float>(), K, N, K, p.data<float>());
  return p;
}

Tensor linear_packed(const Tensor& x, const Tensor& packed, int64_t out_features, const Tensor& b) {
  FORGE_CHECK(!needs_grad({x, b}), "linear_packed: inference only (no gradient)");
  const bool half = packed.dtype() == DType::BF16;
  FORGE_CHECK(x.dtype() == packed.dtype() && x.device().is_cpu(), "linear_packed: needs ", dtype_name(packed.dtype()),
              " input on the CPU (the packed weight's dtype), got ", dtype_name(x.dtype()));
  const int64_t K = x.size(-1), N = out_features;
  FORGE_CHECK(packed.numel() == cpu::packed_elems(N, K), "linear_packed: packed weight holds ", packed.numel(),
              " elements, not the ", cpu::packed_elems(N, K), " of [", N, ", ", K, "]");
  Shape os(x.shape().begin(), x.shape().end() - 1);
  os.push_back(N);
  Tensor x2 = x.detach().reshape({-1, K}).contiguous();
  Tensor y = Tensor::empty({x2.size(0), N}, DType::F32);
  if (half)
    cpu::packed_gemm(x2.size(0), N, K, x2.data<bf16>(), K, packed.data<bf16>(), y.data<float>(), N);
  else
    cpu::packed_gemm(x2.size(0), N, K, x2.data<float>(), K, packed.data<float>(), y.data<float>(), N);
  // bf16: the bias joins the f32 sums, then one rounding to bf16, as the matmul path rounds once.
  if (b.defined()) y = add(y, b.detach().to(DType::F32));
  return (half ? y.to(DType::BF16) : y).view(os);
}

}  // namespace forge
