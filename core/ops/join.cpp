// cat, stack and split (split returns views).
#include "core/autograd.h"
#include "core/ops.h"
#include "core/ops/common.h"

namespace forge {
using G = const std::vector<Tensor>&;
using Need = const std::vector<bool>&;

Tensor cat(const std::vector<Tensor>& xs, int64_t dim) {
  FORGE_CHECK(!xs.empty(), "cat: no tensors given");
  const Tensor& first = xs[0];
  dim = detail::wrap_dim(dim, first.dim());
  DType dt = first.dtype();
  for (const Tensor& x : xs) dt = promote(dt, x.dtype());
  Shape os = first.shape();
  os[dim] = 0;
  std::vector<int64_t> sizes;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& x = xs[i];
    detail::check_same_device(first, x, "cat");
    FORGE_CHECK(x.dim() == first.dim(), "cat: tensor ", i, " has ", x.dim(), " dims, expected ", first.dim());
    for (int64_t d = 0; d < x.dim(); ++d)
      FORGE_CHECK(d == dim || x.size(d) == first.size(d), "cat: tensor ", i, " has shape ", shape_str(x.shape()),
                  ", which differs from ", shape_str(first.shape()), " outside dim ", dim);
    sizes.push_back(x.size(dim));
    os[dim] += x.size(dim);
  }
  Tensor out = Tensor::empty(os, dt, first.device());
  int64_t at = 0;
  for (const Tensor& x : xs) {
    out.narrow(dim, at, x.size(dim)).copy_(x.detach());
    at += x.size(dim);
  }
  if (needs_grad(xs)) {
    std::vector<DType> dts;
    for (const Tensor& x : xs) dts.push_back(x.dtype());
    record("cat", xs, out, [sizes, dim, dts](G g, Need n) {
      std::vector<Tensor> gs;
      int64_t at = 0;
      for (size_t i = 0; i < sizes.size(); ++i) {
        gs.push_back(n[i] ? g[0].narrow(dim, at, sizes[i]).to(dts[i]) : Tensor());
        at += sizes[i];
      }
      return gs;
    });
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& xs, int64_t dim) {
  FORGE_CHECK(!xs.empty(), "stack: no tensors given");
  dim = detail::wrap_dim(dim, xs[0].dim() + 1);
  std::vector<Tensor> us;
  for (const Tensor& x : xs) {
    FORGE_CHECK(x.shape() == xs[0].shape(), "stack: shapes differ: ", shape_str(x.shape()), " and ",
                shape_str(xs[0].shape()));
    us.push_back(x.unsqueeze(dim));
  }
  return cat(us, dim);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  dim = detail::wrap_dim(dim, x.dim());
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  FORGE_CHECK(total == x.size(dim), "split: sizes add up to ", total, " but dim ", dim, " has size ", x.size(dim));
  std::vector<Tensor> out;
  int64_t at = 0;
  for (int64_t s : sizes) {
    out.push_back(x.narrow(dim, at, s));
    at += s;
  }
  return out;
}

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim) {
  FORGE_CHECK(split_size > 0, "split: split_size must be positive");
  int64_t n = x.size(dim);
  std::vector<int64_t> sizes;
  for (int64_t at = 0; at < n; at += split_size) sizes.push_back(std::min(split_size, n - at));
  return split(x, sizes, dim);
}

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol) {
  if (a.shape() != b.shape()) return false;
  std::vector<float> x = a.to_float_vector(), y = b.to_float_vector();
  for (size_t i = 0; i < x.size(); ++i)
    if (!(std::abs(double(x[i]) - double(y[i])) <= atol + rtol * std::abs(double(y[i])))) return false;
  return true;
}

}  // namespace forge
