// Tensor basics: storage, factories, metadata, copies between dtypes and devices.
#include "core/tensor.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "core/autograd.h"
#include "core/cpu_allocator.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/ops/common.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cuda/cuda_backend.h"

namespace forge {

namespace {
std::atomic<size_t> g_cpu_in_use{0}, g_cpu_peak{0};
}

size_t cpu_bytes_in_use() { return g_cpu_in_use.load(); }
size_t cpu_bytes_peak() { return g_cpu_peak.load(); }
void reset_cpu_bytes_peak() { g_cpu_peak = g_cpu_in_use.load(); }

std::shared_ptr<Storage> Storage::allocate(size_t nbytes, Device device) {
  auto s = std::make_shared<Storage>();
  s->nbytes = nbytes;
  s->device = device;
  if (device.is_cpu()) {
    size_t rounded = ((nbytes + 63) / 64) * 64;
    const cpu_alloc::Block b = cpu_alloc::allocate(rounded);
    FORGE_CHECK(b.ptr, "out of CPU memory allocating ", nbytes, " bytes");
    size_t now = g_cpu_in_use += rounded;
    size_t peak = g_cpu_peak.load();
    while (now > peak && !g_cpu_peak.compare_exchange_weak(peak, now)) {
    }
    s->data = std::shared_ptr<void>(b.ptr, [rounded, b](void*) {
      g_cpu_in_use -= rounded;
      cpu_alloc::release(b);
    });
  } else {
    int dev = device.index;
    void* p = nbytes ? cuda::alloc(nbytes, dev) : nullptr;
    s->data = std::shared_ptr<void>(p, [dev](void* q) {
      if (q) cuda::release(q, dev);
    });
  }
  return s;
}

std::shared_ptr<Storage> Storage::wrap(void* ptr, size_t nbytes, Device device, std::shared_ptr<void> owner) {
  auto s = std::make_shared<Storage>();
  s->nbytes = nbytes;
  s->device = device;
  s->data = std::shared_ptr<void>(owner, ptr);  // aliasing constructor: owner keeps ptr alive
  return s;
}

std::string shape_str(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (int64_t i = int64_t(s.size()) - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

// ---- factories ------------------------------------------------------------------------------

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape) FORGE_CHECK(d >= 0, "negative dimension in shape ", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = Storage::allocate(size_t(shape_numel(shape)) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(impl);
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}
Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }
Tensor Tensor::scalar(double value, DType dtype, Device device) { return full({}, value, dtype, device); }

Tensor Tensor::arange(int64_t n, DType dtype, Device device) {
  std::vector<int64_t> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = i;
  Tensor t = from_vector(v, {n});
  if (dtype != DType::I64) t = t.to(dtype);
  return device.is_cpu() ? t : t.to(device);
}

Tensor Tensor::from_floats(const std::vector<float>& values, const Shape& shape, DType dtype) {
  Tensor t = from_vector(values, shape);
  return dtype == DType::F32 ? t : t.to(dtype);
}

// ---- metadata -------------------------------------------------------------------------------

int64_t Tensor::size(int64_t d) const { return impl_->shape[detail::wrap_dim(d, dim())]; }
int64_t Tensor::stride(int64_t d) const { return impl_->strides[detail::wrap_dim(d, dim())]; }

bool Tensor::is_contiguous() const {
  int64_t acc = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (impl_->shape[i] == 1) continue;
    if (impl_->strides[i] != acc) return false;
    acc *= impl_->shape[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  return static_cast<char*>(impl_->storage->data.get()) + impl_->offset * int64_t(dtype_size(impl_->dtype));
}

Tensor& Tensor::requires_grad_(bool on) {
  FORGE_CHECK(!on || is_floating(dtype()), "only floating tensors can require gradients, got ",
              dtype_name(dtype()));
  FORGE_CHECK(is_leaf() || on, "requires_grad_(false) on a non-leaf tensor; use detach()");
  impl_->requires_grad = on;
  return *this;
}

// ---- copies ---------------------------------------------------------------------------------

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->shape = impl_->shape;
  impl->strides = impl_->strides;
  impl->offset = impl_->offset;
  impl->dtype = impl_->dtype;
  return Tensor(impl);
}

void Tensor::set_data(const Tensor& t) const {
  TensorImpl* d = impl_.get();
  d->storage = t.impl_->storage;
  d->shape = t.shape();
  d->strides = t.strides();
  d->offset = t.offset();
  d->dtype = t.dtype();
  d->grad.reset();
}

const Tensor& Tensor::copy_(const Tensor& src) const {
  detail::copy_into(*this, src);
  return *this;
}

const Tensor& Tensor::fill_(double value) const {
  if (numel() == 0) return *this;
  if (device().is_cpu())
    cpu::fill(dtype(), int(dim()), shape().data(), raw_data(), strides().data(), value);
  else
    cuda::fill(dtype(), int(dim()), shape().data(), raw_data(), strides().data(), value, device().index);
  return *this;
}

std::vector<float> Tensor::to_float_vector() const {
  Tensor c = to(Device::cpu());
  if (c.dtype() != DType::F32) c = c.detach().to(DType::F32);
  c = c.contiguous();
  return std::vector<float>(c.data<float>(), c.data<float>() + c.numel());
}

double Tensor::item() const {
  FORGE_CHECK(numel() == 1, "item() needs a one-element tensor, got shape ", shape_str(shape()));
  Tensor c = to(Device::cpu()).detach();
  return dispatch_all(dtype(), [&](auto tag) -> double {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, f16>) return to_f32(*c.data<T>());
    else return double(*c.data<T>());
  });
}

void Tensor::backward(const Tensor& grad, bool retain_graph, bool create_graph) const {
  run_backward({*this}, {grad}, retain_graph, create_graph);
}

}  // namespace forge
