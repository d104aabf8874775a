// Views (no copies) and copies between layouts, dtypes and devices, with their backward rules.
#include <numeric>

#include "core/autograd.h"
#include "core/ops.h"
#include "core/ops/common.h"

namespace forge {
using detail::wrap_dim;

namespace {
Tensor make_view(const Tensor& base, Shape shape, Shape strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.impl()->storage;
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(impl);
}

Shape infer_shape(const Shape& shape, int64_t numel) {
  Shape out = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      FORGE_CHECK(infer < 0, "view/reshape: only one dimension can be -1 in ", shape_str(shape));
      infer = int64_t(i);
    } else {
      FORGE_CHECK(out[i] >= 0, "view/reshape: invalid size in ", shape_str(shape));
      known *= out[i];
    }
  }
  if (infer >= 0) {
    FORGE_CHECK(known > 0 && numel % known == 0, "view/reshape: shape ", shape_str(shape), " is invalid for ",
                numel, " elements");
    out[infer] = numel / known;
  }
  FORGE_CHECK(shape_numel(out) == numel, "view/reshape: shape ", shape_str(shape), " is invalid for ", numel,
              " elements");
  return out;
}

// Strides for viewing (shape, strides) as new_shape without a copy, if possible (as PyTorch).
bool view_strides(const Shape& old_shape, const Shape& old_strides, const Shape& new_shape, Shape& out) {
  out.assign(new_shape.size(), 0);
  if (old_shape.empty() || shape_numel(old_shape) == 0) {
    out = contiguous_strides(new_shape);
    return true;
  }
  int64_t view_d = int64_t(new_shape.size()) - 1;
  int64_t chunk_base = old_strides.back(), tensor_numel = 1, view_numel = 1;
  for (int64_t td = int64_t(old_shape.size()) - 1; td >= 0; --td) {
    tensor_numel *= old_shape[td];
    if (td == 0 || (old_shape[td - 1] != 1 && old_strides[td - 1] != tensor_numel * chunk_base)) {
      while (view_d >= 0 && (view_numel < tensor_numel || new_shape[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base;
        view_numel *= new_shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return false;
      if (td > 0) {
        chunk_base = old_strides[td - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}

// Gradient of a slice: g placed into zeros of the input's shape.
Tensor unslice(const Tensor& g, const Shape& in_shape, int64_t dim, int64_t start, int64_t step) {
  Tensor z = Tensor::zeros(in_shape, g.dtype(), g.device());
  z.slice(dim, start, start + step * (g.size(dim) - 1) + 1, step).copy_(g);
  return z;
}
}  // namespace

Tensor Tensor::view(const Shape& shape) const {
  Shape s = infer_shape(shape, numel());
  Shape st;
  FORGE_CHECK(view_strides(this->shape(), strides(), s, st), "view: cannot view a tensor of shape ",
              shape_str(this->shape()), " with strides ", shape_str(strides()), " as ", shape_str(s),
              " without a copy; use reshape()");
  Tensor out = make_view(*this, s, st, offset());
  if (needs_grad({*this})) {
    Shape in = this->shape();
    record("view", {*this}, out, [in](const std::vector<Tensor>& g, const std::vector<bool>&) {
      return std::vector<Tensor>{g[0].reshape(in)};
    });
  }
  return out;
}

Tensor Tensor::reshape(const Shape& shape) const {
  Shape s = infer_shape(shape, numel());
  Shape st;
  if (view_strides(this->shape(), strides(), s, st)) return view(s);
  return contiguous().view(s);
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  d0 = wrap_dim(d0, dim());
  d1 = wrap_dim(d1, dim());
  Shape s = shape(), st = strides();
  std::swap(s[d0], s[d1]);
  std::swap(st[d0], st[d1]);
  Tensor out = make_view(*this, s, st, offset());
  if (needs_grad({*this}))
    record("transpose", {*this}, out, [d0, d1](const std::vector<Tensor>& g, const std::vector<bool>&) {
      return std::vector<Tensor>{g[0].transpose(d0, d1)};
    });
  return out;
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  FORGE_CHECK(int64_t(dims.size()) == dim(), "permute: ", dims.size(), " dims given for a ", dim(), "-d tensor");
  Shape s(dims.size()), st(dims.size());
  std::vector<int64_t> inverse(dims.size(), -1);
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrap_dim(dims[i], dim());
    FORGE_CHECK(inverse[d] < 0, "permute: dimension ", d, " repeated");
    inverse[d] = int64_t(i);
    s[i] = shape()[d];
    st[i] = strides()[d];
  }
  Tensor out = make_view(*this, s, st, offset());
  if (needs_grad({*this}))
    record("permute", {*this}, out, [inverse](const std::vector<Tensor>& g, const std::vector<bool>&) {
      return std::vector<Tensor>{g[0].permute(inverse)};
    });
  return out;
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  d = wrap_dim(d, dim());
  int64_t n = shape()[d];
  FORGE_CHECK(step > 0, "slice: step must be positive");
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape s = shape(), st = strides();
  s[d] = (end - start + step - 1) / step;
  st[d] *= step;
  Tensor out = make_view(*this, s, st, offset() + start * strides()[d]);
  if (needs_grad({*this})) {
    Shape in = shape();
    record("slice", {*this}, out, [in, d, start, step](const std::vector<Tensor>& g, const std::vector<bool>&) {
      return std::vector<Tensor>{unslice(g[0], in, d, start, step)};
    });
  }
  return out;
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  d = wrap_dim(d, dim());
  FORGE_CHECK(start >= 0 && length >= 0 && start + length <= shape()[d], "narrow: [", start, ", ",
              start + length, ") is outside dimension ", d, " of size ", shape()[d]);
  return slice(d, start, start + length);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  d = wrap_dim(d, dim());
  if (index < 0) index += shape()[d];
  return narrow(d, index, 1).squeeze(d);
}

Tensor Tensor::expand(const Shape& shape) const {
  FORGE_CHECK(shape.size() >= size_t(dim()), "expand: target ", shape_str(shape), " has fewer dims than ",
              shape_str(this->shape()));
  size_t lead = shape.size() - size_t(dim());
  Shape s(shape.size()), st(shape.size(), 0);
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i < lead) {
      FORGE_CHECK(shape[i] >= 0, "expand: -1 is not allowed for new leading dims");
      s[i] = shape[i];
      continue;
    }
    int64_t cur = this->shape()[i - lead];
    int64_t want = shape[i] == -1 ? cur : shape[i];
    FORGE_CHECK(cur == want || cur == 1, "expand: cannot expand ", shape_str(this->shape()), " to ",
                shape_str(shape));
    s[i] = want;
    st[i] = cur == want ? strides()[i - lead] : 0;
  }
  Tensor out = make_view(*this, s, st, offset());
  if (needs_grad({*this})) {
    Shape in = this->shape();
    record("expand", {*this}, out, [in](const std::vector<Tensor>& g, const std::vector<bool>&) {
      return std::vector<Tensor>{detail::sum_to(g[0], in)};
    });
  }
  return out;
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = wrap_dim(d, dim() + 1);
  Shape s = shape(), st = strides();
  int64_t stride = d < dim() ? st[d] * s[d] : 1;
  s.insert(s.begin() + d, 1);
  st.insert(st.begin() + d, stride);
  Tensor out = make_view(*this, s, st, offset());
  if (needs_grad({*this})) {
    Shape in = shape();
    record("unsqueeze", {*this}, out, [in](const std::vector<Tensor>& g, const std::vector<bool>&) {
      return std::vector<Tensor>{g[0].reshape(in)};
    });
  }
  return out;
}

Tensor Tensor::squeeze(int64_t d) const {
  d = wrap_dim(d, dim());
  if (shape()[d] != 1) return *this;
  Shape s = shape(), st = strides();
  s.erase(s.begin() + d);
  st.erase(st.begin() + d);
  Tensor out = make_view(*this, s, st, offset());
  if (needs_grad({*this})) {
    Shape in = shape();
    record("squeeze", {*this}, out, [in](const std::vector<Tensor>& g, const std::vector<bool>&) {
      return std::vector<Tensor>{g[0].reshape(in)};
    });
  }
  return out;
}

Tensor Tensor::flatten(int64_t start, int64_t end) const {
  if (dim() == 0) return reshape({1});
  start = wrap_dim(start, dim());
  end = wrap_dim(end, dim());
  Shape s(shape().begin(), shape().begin() + start);
  int64_t m = 1;
  for (int64_t i = start; i <= end; ++i) m *= shape()[i];
  s.push_back(m);
  s.insert(s.end(), shape().begin() + end + 1, shape().end());
  return reshape(s);
}

// ---- copies ---------------------------------------------------------------------------------

Tensor Tensor::clone() const {
  Tensor out = Tensor::empty(shape(), dtype(), device());
  detail::copy_into(out, *this);
  if (needs_grad({*this}))
    record("clone", {*this}, out, [](const std::vector<Tensor>& g, const std::vector<bool>&) {
      return std::vector<Tensor>{g[0]};
    });
  return out;
}

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

Tensor Tensor::to(DType dt) const {
  if (dt == dtype()) return *this;
  Tensor out = Tensor::empty(shape(), dt, device());
  detail::copy_into(out, *this);
  if (needs_grad({*this}) && is_floating(dt)) {
    DType in = dtype();
    record("cast", {*this}, out, [in](const std::vector<Tensor>& g, const std::vector<bool>&) {
      return std::vector<Tensor>{g[0].to(in)};
    });
  }
  return out;
}

Tensor Tensor::to(Device dev) const {
  if (dev == device()) return *this;
  Tensor out = Tensor::empty(shape(), dtype(), dev);
  detail::copy_into(out, *this);
  if (needs_grad({*this})) {
    Device in = device();
    record("to_device", {*this}, out, [in](const std::vector<Tensor>& g, const std::vector<bool>&) {
      return std::vector<Tensor>{g[0].to(in)};
    });
  }
  return out;
}

}  // namespace forge
