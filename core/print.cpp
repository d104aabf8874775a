// Readable tensor printing: values (abbreviated with ... past max_per_dim), dtype, device, shape.
#include <cmath>
#include <cstdio>
#include <sstream>

#include "core/tensor.h"

namespace forge {
namespace {
void print_rec(std::ostringstream& os, const std::vector<float>& v, const Shape& shape, const Shape& strides,
               size_t d, int64_t base, int max_per_dim, bool integer, int indent) {
  if (shape.empty()) {
    char buf[32];
    if (integer) std::snprintf(buf, sizeof buf, "%lld", (long long)v[base]);
    else std::snprintf(buf, sizeof buf, "%.6g", v[base]);
    os << buf;
    return;
  }
  int64_t n = shape[d];
  os << "[";
  auto item = [&](int64_t i) {
    if (d + 1 == shape.size()) {
      char buf[32];
      if (integer) std::snprintf(buf, sizeof buf, "%lld", (long long)v[base + i * strides[d]]);
      else std::snprintf(buf, sizeof buf, "% .6g", v[base + i * strides[d]]);
      os << buf;
    } else {
      print_rec(os, v, shape, strides, d + 1, base + i * strides[d], max_per_dim, integer, indent + 1);
    }
  };
  const char* sep = d + 1 == shape.size() ? ", " : ",\n";
  auto pad = [&] {
    if (d + 1 < shape.size()) os << std::string(size_t(indent + 1), ' ');
  };
  if (n <= max_per_dim) {
    for (int64_t i = 0; i < n; ++i) {
      if (i) {
        os << sep;
        pad();
      }
      item(i);
    }
  } else {
    int64_t h = max_per_dim / 2;
    for (int64_t i = 0; i < h; ++i) {
      if (i) {
        os << sep;
        pad();
      }
      item(i);
    }
    os << sep;
    pad();
    os << "...";
    for (int64_t i = n - h; i < n; ++i) {
      os << sep;
      pad();
      item(i);
    }
  }
  os << "]";
}
}  // namespace

std::string to_string(const Tensor& t, int max_per_dim) {
  if (!t.defined()) return "Tensor(undefined)";
  std::ostringstream os;
  os << "tensor(";
  std::vector<float> v = t.to_float_vector();
  print_rec(os, v, t.shape(), contiguous_strides(t.shape()), 0, 0, max_per_dim, !is_floating(t.dtype()), 7);
  os << ", dtype=" << dtype_name(t.dtype()) << ", device=" << t.device().str() << ", shape=" << shape_str(t.shape());
  if (t.requires_grad()) os << ", requires_grad";
  os << ")";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << to_string(t); }

}  // namespace forge
