// Tensor: shape, strides, offset and dtype over shared Storage, plus the autograd fields.
// Copying a Tensor copies a handle (like torch.Tensor); views share storage.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/storage.h"

namespace forge {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);
Shape contiguous_strides(const Shape& s);

struct Node;
class Tensor;
using GradHook = std::function<Tensor(const Tensor&)>;  // may return an undefined Tensor: keep grad
using PostAccumulateHook = std::function<void(Tensor&)>;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape, strides;
  int64_t offset = 0;  // in elements
  DType dtype = DType::F32;

  // autograd
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;
  std::shared_ptr<Node> grad_fn;  // null for leaves
  uint32_t output_nr = 0;         // which output of grad_fn this is
  std::weak_ptr<Node> grad_accumulator;
  std::vector<GradHook> hooks;
  std::vector<PostAccumulateHook> post_accumulate_hooks;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- factories -------------------------------------------------------------------------
  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::F32, Device device = Device::cpu());
  static Tensor arange(int64_t n, DType dtype = DType::I64, Device device = Device::cpu());
  static Tensor scalar(double value, DType dtype = DType::F32, Device device = Device::cpu());
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape, Device device = Device::cpu());
  static Tensor from_floats(const std::vector<float>& values, const Shape& shape, DType dtype = DType::F32);

  // ---- metadata --------------------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl_->shape; }
  const Shape& strides() const { return impl_->strides; }
  int64_t dim() const { return int64_t(impl_->shape.size()); }
  int64_t size(int64_t d) const;    // negative d counts from the end
  int64_t stride(int64_t d) const;
  int64_t numel() const { return shape_numel(impl_->shape); }
  int64_t offset() const { return impl_->offset; }
  DType dtype() const { return impl_->dtype; }
  Device device() const { return impl_->storage->device; }
  bool is_contiguous() const;
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype()); }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

  void* raw_data() const;  // address of element 0 (storage + offset)
  template <typename T>
  T* data() const { return static_cast<T*>(raw_data()); }

  // ---- conversions and copies -------------------------------------------------------------
  Tensor contiguous() const;                 // self if already contiguous
  Tensor to(DType dtype) const;              // differentiable cast
  Tensor to(Device device) const;            // differentiable copy between devices
  Tensor clone() const;                      // differentiable copy
  Tensor detach() const;                     // same storage, no history
  std::vector<float> to_float_vector() const;  // any dtype, any device, any layout
  template <typename T>
  std::vector<T> to_vector() const;          // exact element type T must match dtype
  double item() const;                       // one-element tensors

  // In-place, never recorded by autograd (optimisers, initialisers, gradient buffers).
  // They are const like the handle: they change the data, not which tensor this is.
  const Tensor& copy_(const Tensor& src) const;  // broadcasts src; converts dtype; any device pair
  const Tensor& fill_(double value) const;
  const Tensor& zero_() const { return fill_(0.0); }
  // Points this tensor at t's data (shape, dtype, storage), keeping its identity, so every handle
  // to it sees the change (PyTorch's `p.data = t`). Drops the gradient. Sharding and moves use it.
  void set_data(const Tensor& t) const;

  // ---- views (differentiable, no copies) -----------------------------------------------------
  Tensor view(const Shape& shape) const;      // needs compatible strides; one -1 allowed
  Tensor reshape(const Shape& shape) const;   // view when possible, else a copy
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor t() const { return transpose(-2, -1); }
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;
  Tensor expand(const Shape& shape) const;    // -1 keeps a size; new leading dims allowed
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze(int64_t dim) const;
  Tensor flatten(int64_t start = 0, int64_t end = -1) const;

  // ---- autograd --------------------------------------------------------------------------
  bool requires_grad() const { return impl_->requires_grad; }
  Tensor& requires_grad_(bool on = true);
  bool is_leaf() const { return impl_->grad_fn == nullptr; }
  Tensor grad() const { return impl_->grad ? Tensor(impl_->grad) : Tensor(); }
  void set_grad(const Tensor& g) { impl_->grad = g.impl_; }
  const std::shared_ptr<Node>& grad_fn() const { return impl_->grad_fn; }
  // Backward from this tensor; grad defaults to ones for a one-element tensor.
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false, bool create_graph = false) const;
  // Called with the gradient flowing into this tensor before it is accumulated.
  void register_hook(GradHook hook) const;
  // Called on a leaf after its .grad has received this backward's gradient.
  void register_post_accumulate_grad_hook(PostAccumulateHook hook) const;

  // ---- operator sugar (see core/ops.h) ------------------------------------------------------
  Tensor operator-() const;

 private:
  std::shared_ptr<TensorImpl> impl_;
};

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double s);
Tensor operator-(const Tensor& a, double s);
Tensor operator*(const Tensor& a, double s);
Tensor operator/(const Tensor& a, double s);
Tensor operator+(double s, const Tensor& a);
Tensor operator-(double s, const Tensor& a);
Tensor operator*(double s, const Tensor& a);
Tensor operator/(double s, const Tensor& a);

// Readable printing: dtype, device, shape and (abbreviated) values.
std::ostream& operator<<(std::ostream& os, const Tensor& t);
std::string to_string(const Tensor& t, int max_per_dim = 6);

// ---- template definitions ----------------------------------------------------------------
template <typename T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape, Device device) {
  Tensor t = empty(shape, dtype_of<T>::value, Device::cpu());
  if (int64_t(values.size()) != t.numel())
    throw std::runtime_error("from_vector: " + std::to_string(values.size()) + " values for shape " + shape_str(shape));
  std::copy(values.begin(), values.end(), t.data<T>());
  return device.is_cpu() ? t : t.to(device);
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  if (dtype() != dtype_of<T>::value)
    throw std::runtime_error(std::string("to_vector: tensor has dtype ") + dtype_name(dtype()));
  Tensor c = to(Device::cpu()).contiguous();
  return std::vector<T>(c.data<T>(), c.data<T>() + c.numel());
}

}  // namespace forge
