// Module bookkeeping (names, state dicts, dtype/device moves) and the basic layers.
#include "core/nn.h"

#include <cmath>
#include <set>

#include "core/autograd.h"
#include "core/error.h"
#include "kernels/cpu/packed_gemm.h"

namespace forge::nn {

Tensor& Module::register_parameter(const std::string& name, Tensor t, bool requires_grad) {
  if (requires_grad && is_floating(t.dtype())) t.requires_grad_(true);
  params_.emplace_back(name, t);
  return params_.back().second;
}

void Module::drop_parameter(const std::string& name) {
  std::erase_if(params_, [&](const auto& p) { return p.first == name; });
}

void Module::collect(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out) const {
  for (auto& [n, p] : params_) out.emplace_back(prefix + n, p);
  for (auto& [n, m] : children_) m->collect(prefix + n + ".", out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [n, p] : named_parameters()) out.push_back(p);
  return out;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_modules() const {
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> out;
  for (auto& [n, m] : children_) {
    out.emplace_back(n, m);
    for (auto& [cn, cm] : m->named_modules()) out.emplace_back(n + "." + cn, cm);
  }
  return out;
}

std::map<std::string, Tensor> Module::state_dict() const {
  std::map<std::string, Tensor> sd;
  for (auto& [n, p] : named_parameters()) sd[n] = p.detach();
  return sd;
}

Tensor Module::parameter(const std::string& name) const {
  for (auto& [n, p] : named_parameters())
    if (n == name) return p;
  throw Error("no parameter named '" + name + "' in this module");
}

void Module::load_state_dict(const std::map<std::string, Tensor>& sd, bool strict, bool share) {
  std::set<std::string> seen;
  std::vector<std::string> missing;
  NoGradGuard ng;
  for (auto& [n, p] : named_parameters()) {
    auto it = sd.find(n);
    if (it == sd.end()) {
      missing.push_back(n);
      continue;
    }
    seen.insert(n);
    FORGE_CHECK(it->second.shape() == p.shape(), "load_state_dict: '", n, "' has shape ",
                shape_str(it->second.shape()), " but the model expects ", shape_str(p.shape()));
    const Tensor& src = it->second;
    if (share && src.dtype() == p.dtype() && src.device() == p.device() && src.is_contiguous()) {
      p.set_data(src.detach());
      continue;
    }
    Tensor dst = p.detach();
    dst.copy_(src);
  }
  if (!strict) return;
  std::string unexpected;
  for (auto& [n, t] : sd)
    if (!seen.count(n)) unexpected += (unexpected.empty() ? "" : ", ") + n;
  std::string miss;
  for (auto& n : missing) miss += (miss.empty() ? "" : ", ") + n;
  FORGE_CHECK(miss.empty() && unexpected.empty(), "load_state_dict: ",
              miss.empty() ? "" : "missing tensors: " + miss, !miss.empty() && !unexpected.empty() ? "; " : "",
              unexpected.empty() ? "" : "unexpected tensors: " + unexpected);
}

void Module::zero_grad() {
  for (auto& p : parameters()) p.set_grad(Tensor());
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, m] : children_) m->train(on);
}


void Module::to(DType dtype) {
  NoGradGuard ng;
  for (auto& [n, p] : named_parameters())
    if (is_floating(p.dtype()) && p.dtype() != dtype) p.set_data(p.detach().to(dtype));
}

void Module::to(Device device) {
  NoGradGuard ng;
  for (auto& [n, p] : named_parameters())
    if (p.device() != device) p.set_data(p.detach().to(device));
}

int64_t Module::num_parameters(bool trainable_only) const {
  int64_t n = 0;
  for (auto& [name, p] : named_parameters())
    if (!trainable_only || p.requires_grad()) n += p.numel();
  return n;
}

namespace {
thread_local bool skip_init = false;
}
SkipInitGuard::SkipInitGuard() : prev_(skip_init) { skip_init = true; }
SkipInitGuard::~SkipInitGuard() { skip_init = prev_; }
bool SkipInitGuard::active() { return skip_init; }

Linear::Linear(int64_t in, int64_t out, bool with_bias, DType dtype, Generator* gen)
    : in_features(in), out_features(out) {
  if (skip_init) {
    weight = register_parameter("weight", Tensor::empty({out, in}, dtype));
    if (with_bias) bias = register_parameter("bias", Tensor::empty({out}, dtype));
    return;
  }
  double bound = 1.0 / std::sqrt(double(std::max<int64_t>(in, 1)));
  Tensor w = Tensor::empty({out, in}, DType::F32);
  uniform_(w, -bound, bound, gen);
  weight = register_parameter("weight", w.to(dtype));
  if (with_bias) {
    Tensor b = Tensor::empty({out}, DType::F32);
    uniform_(b, -bound, bound, gen);
    bias = register_parameter("bias", b.to(dtype));
  }
}

Tensor Linear::forward(const Tensor& x) const {
  Tensor y;
  if (split == Split::Columns) {
    y = linear(tp->copy(x), weight, bias);  // this rank's output features
  } else if (split == Split::Rows) {
    y = tp->reduce(linear(x, weight));      // partial sums over this rank's input features
    if (bias.defined()) y = add(y, bias);   // once, after the sum
  } else if (quantized) {
    y = quantized->linear(x);
    if (bias.defined()) y = add(y, bias);
  } else if (use_packed(packed, x)) {
    y = linear_packed(x, packed, out_features, bias);
  } else {
    y = linear(x, weight, bias);
  }
  if (!adapter) return y;
  Tensor delta = adapter->forward(x);
  return delta.defined() ? add(y, delta) : y;
}

void Linear::quantize(std::shared_ptr<const QuantizedWeight> q) {
  FORGE_CHECK(split == Split::None, "a Linear split for tensor parallelism cannot be quantised");
  quantized = std::move(q);
  weight = Tensor();
  packed = Tensor();
  drop_parameter("weight");
}

void Linear::pack() {
  if (split == Split::None && packable(weight)) packed = pack_linear_weight(weight);
}

bool packable(const Tensor& w) {  // (a quantised Linear has let its weight go)
  return w.defined() && w.device().is_cpu() && (w.dtype() == DType::F32 || (w.dtype() == DType::BF16 && cpu::packed_bf16_fast()));
}

bool use_packed(const Tensor& packed, const Tensor& x) {
  return packed.defined() && !grad_enabled() && x.dtype() == packed.dtype() && x.device().is_cpu() &&
         x.numel() <= Linear::kPackedRows * x.size(-1);
}

Tensor Embedding::forward(const Tensor& ids) const {
  if (!tp) return embedding(weight, ids);
  // Vocabulary-parallel: rows [vocab_start, vocab_start + V/tp) live here; other ids look up
  // row 0 and are zeroed, and the sum over the group fills every position.
  const int64_t n = weight.size(0);
  Tensor flat = ids.to(Device::cpu()).to(DType::I64).contiguous();
  std::vector<int64_t> local(size_t(flat.numel()));
  std::vector<float> keep(local.size());
  const int64_t* id = flat.data<int64_t>();
  for (size_t i = 0; i < local.size(); ++i) {
    const int64_t l = id[i] - vocab_start;
    const bool mine = l >= 0 && l < n;
    local[i] = mine ? l : 0;
    keep[i] = mine ? 1.0f : 0.0f;
  }
  Shape ks = ids.shape();
  ks.push_back(1);
  // The local ids stay on the host (the embedding checks and moves them); the mask goes where e is.
  Tensor e = embedding(weight, Tensor::from_vector(local, ids.shape()));
  Tensor mask = Tensor::from_vector(keep, ks).to(e.dtype()).to(e.device());
  return tp->reduce(mul(e, mask));
}

Embedding::Embedding(int64_t num, int64_t dim, DType dtype, Generator* gen) {
  if (skip_init) {
    weight = register_parameter("weight", Tensor::empty({num, dim}, dtype));
    return;
  }
  Tensor w = randn({num, dim}, DType::F32, gen);
  weight = register_parameter("weight", w.to(dtype));
}

RMSNorm::RMSNorm(int64_t dim, double e, DType dtype, bool unit) : eps(e), unit_offset(unit) {
  weight = register_parameter("weight", unit ? Tensor::zeros({dim}, dtype) : Tensor::ones({dim}, dtype));
}

}  // namespace forge::nn
