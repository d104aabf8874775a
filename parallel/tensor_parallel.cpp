// Tensor-parallel layers and loss (see tensor_parallel.h).
#include "parallel/tensor_parallel.h"

#include <cmath>
#include <limits>

#include "core/autograd.h"
#include "core/error.h"

namespace forge::parallel {
namespace {

// x summed over the group, in a fresh tensor of x's dtype (the sum itself runs in f32).
Tensor summed(const Tensor& x, Communicator& group) {
  Tensor t = Tensor::empty(x.shape(), DType::F32, x.device());
  t.copy_(x);
  group.all_reduce(t);
  return x.dtype() == DType::F32 ? t : t.to(x.dtype());
}

Tensor tp_copy(const Tensor& x, Communicator& group) {
  Tensor out = x.detach();
  if (needs_grad({x}))
    record("tp_copy", {x}, out, [&group](const std::vector<Tensor>& g, const std::vector<bool>&) {
      return std::vector<Tensor>{summed(g[0], group)};
    });
  return out;
}

Tensor tp_reduce(const Tensor& x, Communicator& group) {
  Tensor out = summed(x.detach(), group);
  if (needs_grad({x}))
    record("tp_reduce", {x}, out, [](const std::vector<Tensor>& g, const std::vector<bool>&) {
      return std::vector<Tensor>{g[0]};
    });
  return out;
}

// This rank's part [rank * n / size, (rank + 1) * n / size) of t along dim, as its own tensor.
Tensor part(const Tensor& t, int dim, int rank, int size) {
  const int64_t n = t.size(dim) / size;
  return t.detach().narrow(dim, rank * n, n).clone();  // clone: one contiguous copy
}

}  // namespace

std::shared_ptr<nn::TensorParallel> make_tensor_parallel(Communicator& group) {
  auto tp = std::make_shared<nn::TensorParallel>();
  tp->rank = group.rank();
  tp->size = group.size();
  tp->copy = [&group](const Tensor& x) { return tp_copy(x, group); };
  tp->reduce = [&group](const Tensor& x) { return tp_reduce(x, group); };
  return tp;
}

std::map<std::string, ParamSplit> shard_model(models::CausalLM& model, peft::LoraModel* lora, Communicator& group) {
  const int n = group.size(), r = group.rank();
  const models::ModelConfig& c = model.config();
  auto divides = [&](int64_t what, const char* name) {
    FORGE_CHECK(what % n == 0, "parallel.tp=", n, " must divide the model's ", name, " (", what, ")");
  };
  divides(c.num_attention_heads, "num_attention_heads");
  divides(c.num_key_value_heads, "num_key_value_heads");
  divides(c.intermediate_size, "intermediate_size");
  divides(c.vocab_size, "vocab_size");

  std::map<std::string, ParamSplit> splits;
  for (auto& [name, p] : model.named_parameters()) splits[name] = {p.shape(), -1};
  if (lora)
    for (auto& [name, p] : lora->named_parameters()) splits[name] = {p.shape(), -1};
  if (n == 1) return splits;

  NoGradGuard ng;
  std::shared_ptr<const nn::TensorParallel> tp = make_tensor_parallel(group);
  std::map<std::string, std::shared_ptr<peft::LoraAdapter>> adapters;
  if (lora)
    for (auto& [name, a] : lora->adapters) adapters[name] = a;
  for (auto& [name, m] : model.named_modules()) {
    auto lin = std::dynamic_pointer_cast<nn::Linear>(m);
    if (!lin) continue;
    const bool rows = name.size() > 6 && (name.rfind(".o_proj") == name.size() - 7 ||
                                          name.rfind(".down_proj") == name.size() - 10);
    lin->split = rows ? nn::Split::Rows : nn::Split::Columns;
    lin->tp = tp;
    const int wdim = rows ? 1 : 0;
    lin->weight.set_data(part(lin->weight, wdim, r, n));
    splits[name + ".weight"].dim = wdim;
    if (lin->bias.defined() && !rows) {
      lin->bias.set_data(part(lin->bias, 0, r, n));
      splits[name + ".bias"].dim = 0;
    }
    (rows ? lin->in_features : lin->out_features) /= n;
    auto it = adapters.find(name);
    if (it == adapters.end()) continue;
    peft::LoraAdapter& a = *it->second;
    a.split = lin->split;
    a.tp = tp;
    const std::string peft_name = "base_model.model." + name;
    if (rows) {
      a.A.set_data(part(a.A, 1, r, n));
      splits[peft_name + ".lora_A.weight"].dim = 1;
    } else {
      a.B.set_data(part(a.B, 0, r, n));
      splits[peft_name + ".lora_B.weight"].dim = 0;
    }
  }
  nn::Embedding& e = *model.model->embed_tokens;
  e.weight.set_data(part(e.weight, 0, r, n));
  e.vocab_start = int64_t(r) * (c.vocab_size / n);
  e.tp = tp;
  splits["model.embed_tokens.weight"].dim = 0;
  return splits;
}

Tensor vocab_parallel_cross_entropy(const Tensor& logits, const Tensor& labels, int64_t vocab_start,
                                    Communicator& group, int64_t ignore_index) {
  FORGE_CHECK(logits.dim() == 2 && labels.dim() == 1 && labels.size(0) == logits.size(0),
              "vocab_parallel_cross_entropy: logits [N, V/tp] and labels [N] expected, got ",
              shape_str(logits.shape()), " and ", shape_str(labels.shape()));
  const int64_t N = logits.size(0), V = logits.size(1);
  Tensor z = logits.detach().to(Device::cpu()).to(DType::F32).contiguous();
  const std::vector<int64_t> lab = labels.to(Device::cpu()).to(DType::I64).to_vector<int64_t>();
  const float* zl = z.data<float>();
  // Row maxima over the whole vocabulary, then sum of exponentials and the target's logit.
  Tensor mx = Tensor::empty({N});
  for (int64_t i = 0; i < N; ++i) {
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < V; ++j) m = std::max(m, zl[i * V + j]);
    mx.data<float>()[i] = m;
  }
  group.all_reduce(mx, ReduceOp::Max);
  Tensor st = Tensor::zeros({2, N});  // [sum exp, target logit]
  float* se = st.data<float>();
  float* tg = se + N;
  const float* m = mx.data<float>();
  for (int64_t i = 0; i < N; ++i) {
    double s = 0;
    for (int64_t j = 0; j < V; ++j) s += std::exp(double(zl[i * V + j] - m[i]));
    se[i] = float(s);
    const int64_t t = lab[size_t(i)] - vocab_start;
    if (lab[size_t(i)] != ignore_index && t >= 0 && t < V) tg[i] = zl[i * V + t];
  }
  group.all_reduce(st);
  double loss = 0;
  for (int64_t i = 0; i < N; ++i)
    if (lab[size_t(i)] != ignore_index) loss += std::log(double(se[i])) + double(m[i]) - double(tg[i]);
  Tensor out = Tensor::scalar(loss, DType::F32, logits.device());
  if (needs_grad({logits})) {
    record("vocab_parallel_cross_entropy", {logits}, out,
           [z, mx, st, lab, vocab_start, ignore_index, dtype = logits.dtype(), dev = logits.device()](
               const std::vector<Tensor>& g, const std::vector<bool>&) {
             const int64_t N = z.size(0), V = z.size(1);
             const float go = float(g[0].item());
             Tensor d = Tensor::zeros({N, V});
             float* dz = d.data<float>();
             const float *zl = z.data<float>(), *m = mx.data<float>(), *se = st.data<float>();
             for (int64_t i = 0; i < N; ++i) {
               if (lab[size_t(i)] == ignore_index) continue;
               for (int64_t j = 0; j < V; ++j) dz[i * V + j] = go * std::exp(zl[i * V + j] - m[i]) / se[i];
               const int64_t t = lab[size_t(i)] - vocab_start;
               if (t >= 0 && t < V) dz[i * V + t] -= go;
             }
             return std::vector<Tensor>{d.to(dtype).to(dev)};
           });
  }
  return out;
}

}  // namespace forge::parallel
