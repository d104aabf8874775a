// Elementwise ops: forward through the device kernels, backward written with the same ops.
#include "core/autograd.h"
#include "core/ops.h"
#include "core/ops/common.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cuda/cuda_backend.h"

namespace forge {
using detail::binary_kernel;
using detail::unary_kernel;
using G = const std::vector<Tensor>&;
using Need = const std::vector<bool>&;

namespace {
// Gradient g reduced to t's shape and given t's dtype.
Tensor fit(const Tensor& g, const Tensor& t) {
  Tensor r = detail::sum_to(g, t.shape());
  return r.dtype() == t.dtype() ? r : r.to(t.dtype());
}

// rule(x, y, g) -> dx, with x and y saved detached.
template <class Rule>
Tensor unary_op(const char* name, UnaryOp op, const Tensor& x, float s, Rule rule) {
  Tensor y = unary_kernel(op, x, s);
  if (needs_grad({x})) {
    Tensor xs = x.detach(), ys = y.detach();
    record(name, {x}, y, [xs, ys, rule](G g, Need) { return std::vector<Tensor>{rule(xs, ys, g[0])}; });
  }
  return y;
}

// rule(a, b, y, g, need) -> {da, db} (not yet reduced to the input shapes).
template <class Rule>
Tensor binary_op(const char* name, BinaryOp op, const Tensor& a, const Tensor& b, Rule rule) {
  Tensor y = binary_kernel(op, a, b);
  if (needs_grad({a, b})) {
    Tensor as = a.detach(), bs = b.detach(), ys = y.detach();
    record(name, {a, b}, y, [as, bs, ys, rule](G g, Need need) {
      auto [da, db] = rule(as, bs, ys, g[0], need);
      return std::vector<Tensor>{need[0] ? fit(da, as) : Tensor(), need[1] ? fit(db, bs) : Tensor()};
    });
  }
  return y;
}

Tensor grad_kernel(BinaryOp op, const Tensor& x, const Tensor& g) { return binary_kernel(op, x, g); }
}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  return binary_op("add", BinaryOp::Add, a, b, [](auto&, auto&, auto&, const Tensor& g, Need) {
    return std::pair{g, g};
  });
}
Tensor sub(const Tensor& a, const Tensor& b) {
  return binary_op("sub", BinaryOp::Sub, a, b, [](auto&, auto&, auto&, const Tensor& g, Need n) {
    return std::pair{g, n[1] ? neg(g) : Tensor()};
  });
}
Tensor mul(const Tensor& a, const Tensor& b) {
  return binary_op("mul", BinaryOp::Mul, a, b, [](const Tensor& a, const Tensor& b, auto&, const Tensor& g, Need n) {
    return std::pair{n[0] ? mul(g, b) : Tensor(), n[1] ? mul(g, a) : Tensor()};
  });
}
Tensor div(const Tensor& a, const Tensor& b) {
  return binary_op("div", BinaryOp::Div, a, b,
                   [](const Tensor&, const Tensor& b, const Tensor& y, const Tensor& g, Need n) {
                     Tensor ga = div(g, b);
                     return std::pair{ga, n[1] ? neg(mul(ga, y)) : Tensor()};
                   });
}
Tensor pow(const Tensor& a, const Tensor& b) {
  return binary_op("pow", BinaryOp::Pow, a, b,
                   [](const Tensor& a, const Tensor& b, const Tensor& y, const Tensor& g, Need n) {
                     Tensor ga = n[0] ? mul(g, mul(b, pow(a, sub(b, Tensor::scalar(1.0, b.dtype(), b.device())))))
                                      : Tensor();
                     Tensor gb = n[1] ? mul(g, mul(y, log(a))) : Tensor();
                     return std::pair{ga, gb};
                   });
}

namespace {
// Share of the gradient a maximum/minimum gives to `a`: 1 where a wins, 0.5 on ties.
Tensor winner_share(const Tensor& a, const Tensor& b, BinaryOp wins, DType dt) {
  Tensor w = binary_kernel(wins, a, b).to(dt);
  Tensor tie = binary_kernel(BinaryOp::Eq, a, b).to(dt);
  return add(w, mul(tie, 0.5));
}
}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b) {
  return binary_op("maximum", BinaryOp::Maximum, a, b,
                   [](const Tensor& a, const Tensor& b, const Tensor& y, const Tensor& g, Need) {
                     Tensor sa = winner_share(a, b, BinaryOp::Gt, g.dtype());
                     return std::pair{mul(g, sa), mul(g, rsub(1.0, sa))};
                   });
}
Tensor minimum(const Tensor& a, const Tensor& b) {
  return binary_op("minimum", BinaryOp::Minimum, a, b,
                   [](const Tensor& a, const Tensor& b, const Tensor& y, const Tensor& g, Need) {
                     Tensor sa = winner_share(a, b, BinaryOp::Lt, g.dtype());
                     return std::pair{mul(g, sa), mul(g, rsub(1.0, sa))};
                   });
}

Tensor add(const Tensor& a, double s) {
  return unary_op("add_scalar", UnaryOp::AddScalar, a, float(s), [](auto&, auto&, const Tensor& g) { return g; });
}
Tensor mul(const Tensor& a, double s) {
  return unary_op("mul_scalar", UnaryOp::MulScalar, a, float(s), [s](auto&, auto&, const Tensor& g) {
    return mul(g, s);
  });
}
Tensor pow(const Tensor& a, double s) {
  return unary_op("pow_scalar", UnaryOp::PowScalar, a, float(s), [s](const Tensor& x, auto&, const Tensor& g) {
    return mul(g, mul(pow(x, s - 1.0), s));
  });
}
Tensor rsub(double s, const Tensor& a) {
  return unary_op("rsub_scalar", UnaryOp::RSubScalar, a, float(s), [](auto&, auto&, const Tensor& g) {
    return neg(g);
  });
}
Tensor rdiv(double s, const Tensor& a) {
  return unary_op("rdiv_scalar", UnaryOp::RDivScalar, a, float(s),
                  [](const Tensor& x, const Tensor& y, const Tensor& g) { return neg(div(mul(g, y), x)); });
}

Tensor neg(const Tensor& x) {
  return unary_op("neg", UnaryOp::Neg, x, 0, [](auto&, auto&, const Tensor& g) { return neg(g); });
}
Tensor exp(const Tensor& x) {
  return unary_op("exp", UnaryOp::Exp, x, 0, [](auto&, const Tensor& y, const Tensor& g) { return mul(g, y); });
}
Tensor log(const Tensor& x) {
  return unary_op("log", UnaryOp::Log, x, 0, [](const Tensor& x, auto&, const Tensor& g) { return div(g, x); });
}
Tensor sqrt(const Tensor& x) {
  return unary_op("sqrt", UnaryOp::Sqrt, x, 0, [](auto&, const Tensor& y, const Tensor& g) {
    return div(mul(g, 0.5), y);
  });
}
Tensor rsqrt(const Tensor& x) {
  return unary_op("rsqrt", UnaryOp::Rsqrt, x, 0, [](auto&, const Tensor& y, const Tensor& g) {
    return mul(mul(g, pow(y, 3.0)), -0.5);
  });
}
Tensor sigmoid(const Tensor& x) {
  return unary_op("sigmoid", UnaryOp::Sigmoid, x, 0, [](const Tensor& x, auto&, const Tensor& g) {
    return grad_kernel(BinaryOp::SigmoidGrad, x, g);
  });
}
Tensor log_sigmoid(const Tensor& x) {
  return unary_op("log_sigmoid", UnaryOp::LogSigmoid, x, 0, [](const Tensor& x, auto&, const Tensor& g) {
    return grad_kernel(BinaryOp::LogSigmoidGrad, x, g);
  });
}
Tensor tanh(const Tensor& x) {
  return unary_op("tanh", UnaryOp::Tanh, x, 0, [](const Tensor& x, auto&, const Tensor& g) {
    return grad_kernel(BinaryOp::TanhGrad, x, g);
  });
}
Tensor silu(const Tensor& x) {
  return unary_op("silu", UnaryOp::Silu, x, 0, [](const Tensor& x, auto&, const Tensor& g) {
    return grad_kernel(BinaryOp::SiluGrad, x, g);
  });
}
Tensor gelu(const Tensor& x, bool tanh_approx) {
  if (tanh_approx)
    return unary_op("gelu_tanh", UnaryOp::GeluTanh, x, 0, [](const Tensor& x, auto&, const Tensor& g) {
      return grad_kernel(BinaryOp::GeluTanhGrad, x, g);
    });
  return unary_op("gelu", UnaryOp::Gelu, x, 0, [](const Tensor& x, auto&, const Tensor& g) {
    return grad_kernel(BinaryOp::GeluGrad, x, g);
  });
}
Tensor abs(const Tensor& x) {
  return unary_op("abs", UnaryOp::Abs, x, 0, [](const Tensor& x, auto&, const Tensor& g) {
    Tensor zero = Tensor::scalar(0.0, x.dtype(), x.device());
    Tensor sign = sub(binary_kernel(BinaryOp::Gt, x, zero).to(g.dtype()), binary_kernel(BinaryOp::Lt, x, zero).to(g.dtype()));
    return mul(g, sign);
  });
}
Tensor square(const Tensor& x) {
  return unary_op("square", UnaryOp::Square, x, 0, [](const Tensor& x, auto&, const Tensor& g) {
    return mul(mul(g, x), 2.0);
  });
}

Tensor eq(const Tensor& a, const Tensor& b) { return binary_kernel(BinaryOp::Eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return binary_kernel(BinaryOp::Ne, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return binary_kernel(BinaryOp::Lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return binary_kernel(BinaryOp::Le, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return binary_kernel(BinaryOp::Gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return binary_kernel(BinaryOp::Ge, a, b); }

Tensor where(const Tensor& cond, const Tensor& a0, const Tensor& b0) {
  FORGE_CHECK(cond.dtype() == DType::U8, "where: condition must be u8, got ", dtype_name(cond.dtype()));
  detail::check_same_device(cond, a0, "where");
  detail::check_same_device(a0, b0, "where");
  DType ct = promote(a0.dtype(), b0.dtype());
  Tensor a = a0.dtype() == ct ? a0 : a0.to(ct);
  Tensor b = b0.dtype() == ct ? b0 : b0.to(ct);
  Shape shape = detail::broadcast_shapes(cond.shape(), detail::broadcast_shapes(a.shape(), b.shape()));
  Tensor out = Tensor::empty(shape, ct, a.device());
  Shape sc = detail::broadcast_strides(cond, shape), sa = detail::broadcast_strides(a, shape),
        sb = detail::broadcast_strides(b, shape);
  int nd = int(shape.size());
  if (a.device().is_cpu())
    cpu::where(ct, nd, shape.data(), out.raw_data(), out.strides().data(), cond.data<uint8_t>(), sc.data(),
               a.raw_data(), sa.data(), b.raw_data(), sb.data());
  else
    cuda::where(ct, nd, shape.data(), out.raw_data(), out.strides().data(), cond.data<uint8_t>(), sc.data(),
                a.raw_data(), sa.data(), b.raw_data(), sb.data(), a.device().index);
  if (needs_grad({a, b})) {
    Tensor c = cond.detach(), as = a.detach(), bs = b.detach();
    record("where", {a, b}, out, [c, as, bs](G g, Need n) {
      Tensor zero = Tensor::scalar(0.0, g[0].dtype(), g[0].device());
      return std::vector<Tensor>{n[0] ? fit(where(c, g[0], zero), as) : Tensor(),
                                 n[1] ? fit(where(c, zero, g[0]), bs) : Tensor()};
    });
  }
  return out;
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  return where(mask, Tensor::scalar(value, x.dtype(), x.device()), x);
}

Tensor& add_(Tensor& self, const Tensor& other, double alpha) {
  FORGE_CHECK(!(grad_enabled() && self.requires_grad()),
              "add_: in-place update of a tensor that requires grad; wrap it in NoGradGuard");
  Tensor o = other.dtype() == self.dtype() ? other : other.detach().to(self.dtype());
  if (alpha != 1.0) o = unary_kernel(UnaryOp::MulScalar, o, float(alpha));
  binary_kernel(BinaryOp::Add, self, o, self);
  return self;
}

Tensor& mul_(Tensor& self, double s) {
  FORGE_CHECK(!(grad_enabled() && self.requires_grad()),
              "mul_: in-place update of a tensor that requires grad; wrap it in NoGradGuard");
  unary_kernel(UnaryOp::MulScalar, self, float(s), self);
  return self;
}

Tensor zeros_like(const Tensor& x) { return Tensor::zeros(x.shape(), x.dtype(), x.device()); }
Tensor ones_like(const Tensor& x) { return Tensor::ones(x.shape(), x.dtype(), x.device()); }

// ---- operator sugar ---------------------------------------------------------------------------
Tensor Tensor::operator-() const { return neg(*this); }
Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, double s) { return add(a, s); }
Tensor operator-(const Tensor& a, double s) { return add(a, -s); }
Tensor operator*(const Tensor& a, double s) { return mul(a, s); }
Tensor operator/(const Tensor& a, double s) { return mul(a, 1.0 / s); }
Tensor operator+(double s, const Tensor& a) { return add(a, s); }
Tensor operator-(double s, const Tensor& a) { return rsub(s, a); }
Tensor operator*(double s, const Tensor& a) { return mul(a, s); }
Tensor operator/(double s, const Tensor& a) { return rdiv(s, a); }

}  // namespace forge
