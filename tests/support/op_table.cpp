// Runs op-table cases: maps each op name of the PyTorch oracle to the Forge call.
#include "tests/support/op_table.h"

#include <cmath>
#include <cstdlib>
#include <map>
#include <sstream>

#include "core/hdf5_io.h"

namespace forge::test {
using nlohmann::json;

std::string reference_path() {
  const char* p = std::getenv("FORGE_OPS_REFERENCE");
  return p ? p : "ops_reference.h5";
}

std::vector<OpCase> load_op_cases(const std::string& path) {
  std::map<std::string, Tensor> all = load_hdf5(path);
  std::map<std::string, OpCase> cases;
  for (auto& [key, t] : all) {
    size_t slash = key.find('/');
    std::string name = key.substr(0, slash), field = key.substr(slash + 1);
    OpCase& c = cases[name];
    c.name = name;
    if (field == "spec") {
      std::vector<uint8_t> bytes = t.to_vector<uint8_t>();
      c.spec = json::parse(std::string(bytes.begin(), bytes.end()));
    } else if (field == "out") c.out = t;
    else if (field == "gout") c.gout = t;
    else {
      bool is_in = field.rfind("in", 0) == 0;
      size_t i = std::stoul(field.substr(is_in ? 2 : 4));
      auto& v = is_in ? c.stored : c.grads;
      if (v.size() <= i) v.resize(i + 1);
      v[i] = t;
    }
  }
  std::vector<OpCase> out;
  for (auto& [n, c] : cases) {
    c.grads.resize(c.stored.size());
    out.push_back(c);
  }
  return out;
}

namespace {
Tensor run_op(const std::string& op, const std::vector<Tensor>& x, const json& a) {
  auto dims = [&] { return a.at("dims").get<std::vector<int64_t>>(); };
  if (op == "add") return add(x[0], x[1]);
  if (op == "sub") return sub(x[0], x[1]);
  if (op == "mul") return mul(x[0], x[1]);
  if (op == "div") return div(x[0], x[1]);
  if (op == "pow") return pow(x[0], x[1]);
  if (op == "maximum") return maximum(x[0], x[1]);
  if (op == "minimum") return minimum(x[0], x[1]);
  if (op == "add_scalar") return add(x[0], a.at("s").get<double>());
  if (op == "mul_scalar") return mul(x[0], a.at("s").get<double>());
  if (op == "pow_scalar") return pow(x[0], a.at("s").get<double>());
  if (op == "rsub") return rsub(a.at("s").get<double>(), x[0]);
  if (op == "rdiv") return rdiv(a.at("s").get<double>(), x[0]);
  if (op == "neg") return neg(x[0]);
  if (op == "exp") return exp(x[0]);
  if (op == "log") return log(x[0]);
  if (op == "sqrt") return sqrt(x[0]);
  if (op == "rsqrt") return rsqrt(x[0]);
  if (op == "sigmoid") return sigmoid(x[0]);
  if (op == "tanh") return tanh(x[0]);
  if (op == "silu") return silu(x[0]);
  if (op == "gelu") return gelu(x[0]);
  if (op == "gelu_tanh") return gelu(x[0], true);
  if (op == "abs") return abs(x[0]);
  if (op == "square") return square(x[0]);
  if (op == "log_sigmoid") return log_sigmoid(x[0]);
  if (op == "sum") return sum(x[0], dims(), a.at("keepdim"));
  if (op == "mean") return mean(x[0], dims(), a.at("keepdim"));
  if (op == "max") return max(x[0], dims(), a.at("keepdim"));
  if (op == "matmul") return matmul(x[0], x[1]);
  if (op == "linear") return linear(x[0], x[1], x.size() > 2 ? x[2] : Tensor());
  if (op == "softmax") return softmax(x[0], a.at("dim"));
  if (op == "log_softmax") return log_softmax(x[0], a.at("dim"));
  if (op == "cross_entropy")
    return cross_entropy(x[0], x[1], -100, a.at("reduction") == "sum" ? Reduction::Sum : Reduction::Mean);
  if (op == "embedding") return embedding(x[0], x[1]);
  if (op == "rms_norm") return rms_norm(x[0], x[1], a.at("eps"), a.value("unit_offset", false));
  if (op == "rope") return rope(x[0], x[1], x[2], a.value("mscale", 1.0));
  if (op == "attention") {
    AttentionOptions o;
    o.causal = a.at("causal");
    o.window = a.value("window", 0);
    o.softcap = a.value("softcap", 0.0);
    if (a.contains("scale")) o.scale = a.at("scale").get<double>();
    if (x.size() > 3) o.doc_ids = x[3];
    return scaled_dot_product_attention(x[0], x[1], x[2], o);
  }
  if (op == "cat") return cat(x, a.at("dim"));
  if (op == "stack") return stack(x, a.at("dim"));
  if (op == "split") return split(x[0], a.at("size").get<int64_t>(), a.at("dim"))[a.at("index").get<size_t>()];
  if (op == "where") return where(x[0], x[1], x[2]);
  if (op == "masked_fill") return masked_fill(x[0], x[1], a.at("value"));
  if (op == "views")
    return mul(x[0].permute({0, 2, 1}).reshape({x[0].size(0), -1}).slice(1, 1, -1, 2), x[1])
        .unsqueeze(1)
        .expand({-1, 3, -1});
  throw std::runtime_error("op table: no Forge mapping for op '" + op + "'");
}
}  // namespace

double default_rtol(const OpCase& c) {
  if (!c.spec["rtol"].is_null()) return c.spec["rtol"];
  return c.spec["dtype"] == "bf16" ? 1e-2 : 1e-5;
}

OpResult run_case(const OpCase& c, Device device) {
  DType dt = dtype_from_name(c.spec["dtype"]);
  std::vector<Tensor> leaves, actual;
  for (size_t i = 0; i < c.stored.size(); ++i) {
    const json& in = c.spec["inputs"][i];
    Tensor t = c.stored[i];
    bool grad = in["grad"];
    if (grad) t = t.to(dt);  // exact: the oracle rounded these values to dt already
    t = t.to(device);
    if (grad) t.requires_grad_(true);
    leaves.push_back(t);
    actual.push_back(in["transpose"] ? t.transpose(-1, -2) : t);
  }
  Tensor out = run_op(c.spec["op"], actual, c.spec["args"]);
  out.backward(c.gout.to(out.dtype()).to(device));
  OpResult r{out, {}};
  for (Tensor& l : leaves) r.grads.push_back(l.requires_grad() ? l.grad() : Tensor());
  return r;
}

std::string compare(const Tensor& got, const Tensor& want, double rtol) {
  std::ostringstream os;
  if (!got.defined()) return "missing (undefined tensor)";
  if (got.shape() != want.shape()) {
    os << "shape " << shape_str(got.shape()) << ", expected " << shape_str(want.shape());
    return os.str();
  }
  std::vector<float> g = got.to_float_vector(), w = want.to_float_vector();
  double maxabs = 0;
  for (float v : w) maxabs = std::max(maxabs, double(std::abs(v)));
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    double err = std::abs(double(g[i]) - double(w[i])) / (rtol * (std::abs(double(w[i])) + 0.1 * maxabs) + 1e-30);
    if (!(err <= worst)) {  // NaN counts as worst
      worst = std::isnan(err) ? INFINITY : err;
      at = i;
    }
  }
  if (worst <= 1.0) return "";
  os << "element " << at << ": got " << g[at] << ", expected " << w[at] << " (" << worst << "x the tolerance "
     << rtol << ")";
  return os.str();
}

}  // namespace forge::test
