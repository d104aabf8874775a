// Broadcasting, device dispatch of elementwise kernels, and cross-device copies.
#include "core/ops/common.h"

#include "core/autograd.h"
#include "core/ops.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cuda/cuda_backend.h"

namespace forge::detail {

int64_t wrap_dim(int64_t d, int64_t ndim) {
  int64_t n = ndim == 0 ? 1 : ndim;
  FORGE_CHECK(d >= -n && d < n, "dimension ", d, " out of range for a tensor with ", ndim, " dims");
  return d < 0 ? d + n : d;
}

Shape broadcast_shapes(const Shape& a, const Shape& b) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    FORGE_CHECK(da == db || da == 1 || db == 1, "shapes ", shape_str(a), " and ", shape_str(b),
                " cannot be broadcast together");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Shape broadcast_strides(const Tensor& t, const Shape& out) {
  Shape st(out.size(), 0);
  size_t lead = out.size() - t.shape().size();
  FORGE_CHECK(t.shape().size() <= out.size(), "cannot broadcast ", shape_str(t.shape()), " to ", shape_str(out));
  for (size_t i = 0; i < t.shape().size(); ++i) {
    int64_t d = t.shape()[i];
    FORGE_CHECK(d == out[lead + i] || d == 1, "cannot broadcast ", shape_str(t.shape()), " to ", shape_str(out));
    st[lead + i] = d == 1 ? 0 : t.strides()[i];
  }
  return st;
}

void check_same_device(const Tensor& a, const Tensor& b, const char* op) {
  FORGE_CHECK(a.device() == b.device(), op, ": operands on different devices (", a.device().str(), " and ",
              b.device().str(), ")");
}

Tensor unary_kernel(UnaryOp op, const Tensor& x, float s, Tensor out) {
  FORGE_CHECK(is_floating(x.dtype()), "elementwise math needs a floating tensor, got ", dtype_name(x.dtype()));
  if (!out.defined()) out = Tensor::empty(x.shape(), x.dtype(), x.device());
  FORGE_CHECK(out.shape() == x.shape() && out.dtype() == x.dtype(), "unary: output mismatch");
  int nd = int(x.dim());
  if (x.device().is_cpu())
    cpu::unary(op, x.dtype(), nd, x.shape().data(), out.raw_data(), out.strides().data(), x.raw_data(),
               x.strides().data(), s);
  else
    cuda::unary(op, x.dtype(), nd, x.shape().data(), out.raw_data(), out.strides().data(), x.raw_data(),
                x.strides().data(), s, x.device().index);
  return out;
}

Tensor binary_kernel(BinaryOp op, const Tensor& a0, const Tensor& b0, Tensor out) {
  check_same_device(a0, b0, "binary op");
  DType ct = promote(a0.dtype(), b0.dtype());
  Tensor a = a0.dtype() == ct ? a0 : a0.detach().to(ct);
  Tensor b = b0.dtype() == ct ? b0 : b0.detach().to(ct);
  Shape shape = broadcast_shapes(a.shape(), b.shape());
  DType ot = is_comparison(op) ? DType::U8 : ct;
  if (!out.defined()) out = Tensor::empty(shape, ot, a.device());
  FORGE_CHECK(out.shape() == shape && out.dtype() == ot, "in-place op: result shape ", shape_str(shape),
              " does not fit the output ", shape_str(out.shape()));
  Shape sa = broadcast_strides(a, shape), sb = broadcast_strides(b, shape);
  if (a.device().is_cpu())
    cpu::binary(op, ct, int(shape.size()), shape.data(), out.raw_data(), out.strides().data(), a.raw_data(),
                sa.data(), b.raw_data(), sb.data());
  else
    cuda::binary(op, ct, int(shape.size()), shape.data(), out.raw_data(), out.strides().data(), a.raw_data(),
                 sa.data(), b.raw_data(), sb.data(), a.device().index);
  return out;
}

void copy_into(const Tensor& dst, const Tensor& src) {
  if (dst.numel() == 0) return;
  Shape ss = broadcast_strides(src, dst.shape());
  int nd = int(dst.dim());
  Device dd = dst.device(), sd = src.device();
  if (dd.is_cpu() && sd.is_cpu()) {
    cpu::copy_cast(dst.dtype(), src.dtype(), nd, dst.shape().data(), dst.raw_data(), dst.strides().data(),
                   src.raw_data(), ss.data());
    return;
  }
  if (dd == sd) {  // same CUDA device
    cuda::copy_cast(dst.dtype(), src.dtype(), nd, dst.shape().data(), dst.raw_data(), dst.strides().data(),
                    src.raw_data(), ss.data(), dd.index);
    return;
  }
  // Across devices: make a dense copy of src (in dst's dtype and shape) on its own device, move
  // the bytes, then scatter into dst's layout on dst's device.
  Tensor dense = Tensor::empty(dst.shape(), dst.dtype(), sd);
  copy_into(dense, src);
  Tensor moved = dst.is_contiguous() ? dst : Tensor::empty(dst.shape(), dst.dtype(), dd);
  size_t n = dense.nbytes();
  if (dd.is_cpu()) cuda::copy_d2h(moved.raw_data(), dense.raw_data(), n, sd.index);
  else if (sd.is_cpu()) cuda::copy_h2d(moved.raw_data(), dense.raw_data(), n, dd.index);
  else {
    Tensor host = Tensor::empty(dst.shape(), dst.dtype(), Device::cpu());
    cuda::copy_d2h(host.raw_data(), dense.raw_data(), n, sd.index);
    cuda::copy_h2d(moved.raw_data(), host.raw_data(), n, dd.index);
  }
  if (!moved.same(dst)) copy_into(dst, moved);
}

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  std::vector<int64_t> dims;
  size_t lead = g.shape().size() - shape.size();
  for (size_t i = 0; i < g.shape().size(); ++i) {
    if (i < lead) dims.push_back(int64_t(i));
    else if (shape[i - lead] == 1 && g.shape()[i] != 1) dims.push_back(int64_t(i));
  }
  if (dims.empty()) return g.reshape(shape);
  Tensor r = sum(g, dims, true);
  return r.reshape(shape);
}

}  // namespace forge::detail
