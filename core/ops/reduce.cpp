// sum / mean / max over dims, f32 accumulation, with backward rules.
#include <algorithm>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/ops/common.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cuda/cuda_backend.h"

namespace forge {
using G = const std::vector<Tensor>&;
using Need = const std::vector<bool>&;

namespace {
struct Plan {
  std::vector<int64_t> dims;  // sorted, unique, reduced
  Shape kept_shape;           // output shape with keepdim
  Shape out_shape;            // output shape without keepdim
  int64_t count = 1;          // elements reduced into each output
};

Plan plan_reduce(const Tensor& x, const std::vector<int64_t>& dims_in) {
  Plan p;
  int64_t nd = x.dim();
  if (dims_in.empty()) {
    for (int64_t d = 0; d < nd; ++d) p.dims.push_back(d);
  } else {
    for (int64_t d : dims_in) p.dims.push_back(detail::wrap_dim(d, nd));
    std::sort(p.dims.begin(), p.dims.end());
    FORGE_CHECK(std::adjacent_find(p.dims.begin(), p.dims.end()) == p.dims.end(), "reduction: repeated dim");
  }
  for (int64_t d = 0; d < nd; ++d) {
    bool red = std::binary_search(p.dims.begin(), p.dims.end(), d);
    p.kept_shape.push_back(red ? 1 : x.size(d));
    if (red) p.count *= x.size(d);
    else p.out_shape.push_back(x.size(d));
  }
  return p;
}

// Reduces x over p.dims on its device; returns f32 of shape p.out_shape.
Tensor reduce_f32(cpu::ReduceOp op, const Tensor& x, const Plan& p) {
  FORGE_CHECK(is_floating(x.dtype()), "sum/mean/max need a floating tensor, got ", dtype_name(x.dtype()));
  std::vector<int64_t> kept, red = p.dims;
  for (int64_t d = 0; d < x.dim(); ++d)
    if (!std::binary_search(red.begin(), red.end(), d)) kept.push_back(d);
  int64_t M = shape_numel(p.out_shape), R = p.count;
  const Device dev = x.device();
  Tensor out = Tensor::empty(p.out_shape, DType::F32, dev);
  if (M == 0) return out;
  FORGE_CHECK(R > 0 || op == cpu::ReduceOp::Sum, "max over an empty dimension");
  Tensor xd = x.detach();
  std::vector<int64_t> rows_order = kept, cols_order = red;
  rows_order.insert(rows_order.end(), red.begin(), red.end());
  cols_order.insert(cols_order.end(), kept.begin(), kept.end());
  Tensor as_rows = xd.permute(rows_order), as_cols = xd.permute(cols_order);
  if (!as_rows.is_contiguous() && as_cols.is_contiguous() && !kept.empty()) {
    detail::run_kernel(dev, cpu::reduce_cols, cuda::reduce_cols, op, x.dtype(), as_cols.raw_data(), R, M,
                       out.data<float>());
  } else {
    as_rows = as_rows.contiguous();
    detail::run_kernel(dev, cpu::reduce_rows, cuda::reduce_rows, op, x.dtype(), as_rows.raw_data(), M, R,
                       out.data<float>());
  }
  return out;
}

Tensor finish(const Tensor& r, const Tensor& x, const Plan& p, bool keepdim) {
  Tensor out = keepdim ? r.reshape(p.kept_shape) : r;
  return out.dtype() == x.dtype() ? out : out.to(x.dtype());
}
}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  Plan p = plan_reduce(x, dims);
  Tensor out = finish(reduce_f32(cpu::ReduceOp::Sum, x, p), x, p, keepdim);
  if (needs_grad({x})) {
    Shape in = x.shape(), kept = p.kept_shape;
    record("sum", {x}, out, [in, kept](G g, Need) { return std::vector<Tensor>{g[0].reshape(kept).expand(in)}; });
  }
  return out;
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  Plan p = plan_reduce(x, dims);
  return mul(sum(x, dims, keepdim), 1.0 / double(std::max<int64_t>(p.count, 1)));
}

Tensor max(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  Plan p = plan_reduce(x, dims);
  Tensor out = finish(reduce_f32(cpu::ReduceOp::Max, x, p), x, p, keepdim);
  if (needs_grad({x})) {
    Tensor xs = x.detach(), ys = out.detach();
    Shape kept = p.kept_shape;
    std::vector<int64_t> rd = p.dims;
    record("max", {x}, out, [xs, ys, kept, rd](G g, Need) {
      Tensor mask = eq(xs, ys.reshape(kept)).to(g[0].dtype());
      Tensor count = sum(mask, rd, true);
      return std::vector<Tensor>{div(mul(mask, g[0].reshape(kept)), count)};
    });
  }
  return out;
}

}  // namespace forge
