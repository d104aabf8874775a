// Tensor-parallel layers and loss (see tensor_parallel.h).
#include "parallel/tensor_parallel.h"

#include <cmath>
#include <map>
#include <mutex>

#include "core/autograd.h"
#include "core/error.h"
#include "models/naming.h"

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

// 0 .. V-1 as a [1, V] f32 row on `dev`, made once per size and device (a copy to the device each
// time would cost every micro-batch one).
Tensor columns(int64_t V, Device dev) {
  static std::mutex mu;
  static std::map<std::pair<int64_t, std::string>, Tensor> made;
  std::lock_guard<std::mutex> lock(mu);
  Tensor& t = made[{V, dev.str()}];
  if (!t.defined()) t = Tensor::arange(V, DType::F32, dev).reshape({1, V});
  return t;
}

}  // namespace

Tensor tp_part(const Tensor& t, int dim, int rank, int size, const std::vector<int64_t>& segments) {
  const std::vector<int64_t> segs = segments.empty() ? std::vector<int64_t>{t.size(dim)} : segments;
  std::vector<Tensor> pieces;
  int64_t at = 0;
  for (int64_t s : segs) {
    pieces.push_back(t.detach().narrow(dim, at + rank * (s / size), s / size));
    at += s;
  }
  return pieces.size() == 1 ? pieces[0].clone() : cat(pieces, dim);  // one contiguous copy
}

void place_tp_part(Tensor& full, const Tensor& part, int dim, int rank, int size, const std::vector<int64_t>& segments) {
  const std::vector<int64_t> segs = segments.empty() ? std::vector<int64_t>{full.size(dim)} : segments;
  int64_t at = 0, in_part = 0;
  for (int64_t s : segs) {
    full.narrow(dim, at + rank * (s / size), s / size).copy_(part.narrow(dim, in_part, s / size));
    at += s;
    in_part += s / size;
  }
}

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
    const bool rows = lin->tp_plan == nn::Split::Rows;  // the architecture's plan (models/causal_lm.cpp)
    lin->split = lin->tp_plan;
    lin->tp = tp;
    const int wdim = rows ? 1 : 0;
    const std::vector<int64_t> segs = rows ? std::vector<int64_t>{} : lin->segments;  // fused outputs
    for (int64_t s : segs) FORGE_CHECK(s % n == 0, "parallel.tp=", n, " must divide each part of ", name, " (", s, ")");
    lin->weight.set_data(tp_part(lin->weight, wdim, r, n, segs));
    splits[name + ".weight"].dim = wdim;
    splits[name + ".weight"].segments = segs;
    if (lin->bias.defined() && !rows) {
      lin->bias.set_data(tp_part(lin->bias, 0, r, n, segs));
      splits[name + ".bias"].dim = 0;
      splits[name + ".bias"].segments = segs;
    }
    (rows ? lin->in_features : lin->out_features) /= n;
    for (int64_t& s : lin->segments) s /= n;
    auto it = adapters.find(name);
    if (it == adapters.end()) continue;
    peft::LoraAdapter& a = *it->second;
    a.split = lin->split;
    a.tp = tp;
    const std::string peft_name = models::kPeftPrefix + name;
    if (rows) {
      a.A.set_data(tp_part(a.A, 1, r, n));
      splits[peft_name + ".lora_A.weight"].dim = 1;
    } else {
      a.B.set_data(tp_part(a.B, 0, r, n, segs));
      splits[peft_name + ".lora_B.weight"].dim = 0;
      splits[peft_name + ".lora_B.weight"].segments = segs;
    }
  }
  nn::Embedding& e = *model.model->embed_tokens;
  e.weight.set_data(tp_part(e.weight, 0, r, n));
  e.vocab_start = int64_t(r) * (c.vocab_size / n);
  e.tp = tp;
  splits[models::kEmbedWeight].dim = 0;
  return splits;
}

Tensor vocab_parallel_cross_entropy(const Tensor& logits, const Tensor& labels, int64_t vocab_start,
                                    Communicator& group, int64_t ignore_index, Reduction reduction) {
  FORGE_CHECK(reduction != Reduction::Mean, "vocab_parallel_cross_entropy: Sum or None");
  FORGE_CHECK(logits.dim() == 2 && labels.dim() == 1 && labels.size(0) == logits.size(0),
              "vocab_parallel_cross_entropy: logits [N, V/tp] and labels [N] expected, got ",
              shape_str(logits.shape()), " and ", shape_str(labels.shape()));
  const int64_t N = logits.size(0), V = logits.size(1);
  const Device dev = logits.device();
  // Tensor ops on the logits' device throughout (a GPU keeps them; the group moves [N, 1] and
  // [N, 2]). Ids and offsets are exact in f32 (vocabularies are far below 2^24).
  Tensor e, se, target, valid, out;
  {
    NoGradGuard ng;
    const Tensor z = logits.detach().to(DType::F32).contiguous();
    const Tensor lab = labels.to(DType::F32).to(dev).reshape({N, 1});
    valid = ne(lab, Tensor::scalar(double(ignore_index), DType::F32, dev)).to(DType::F32);  // [N, 1]
    // One-hot targets [N, V]: a target outside this part of the vocabulary matches no column.
    target = eq(columns(V, dev), lab - double(vocab_start)).to(DType::F32);
    // Row maxima over the whole vocabulary, then the sums of exponentials and the targets' logits.
    Tensor mx = max(z, {1}, true).contiguous();  // [N, 1]
    group.all_reduce(mx, ReduceOp::Max);
    e = exp(sub(z, mx));
    Tensor st = cat({sum(e, {1}, true), sum(mul(z, target), {1}, true)}, 1).contiguous();  // [N, 2]
    group.all_reduce(st);
    se = st.narrow(1, 0, 1);
    out = mul(sub(add(log(se), mx), st.narrow(1, 1, 1)), valid);  // [N, 1]
    out = reduction == Reduction::Sum ? sum(out) : out.reshape({N});
  }
  if (needs_grad({logits}))
    record("vocab_parallel_cross_entropy", {logits}, out,
           [e, se, target, valid, N, dtype = logits.dtype()](const std::vector<Tensor>& g, const std::vector<bool>&) {
             // go (softmax - one-hot) on the rows with a target (go per row, or one for the sum).
             const Tensor go = g[0].numel() == 1 ? g[0].to(DType::F32) : g[0].to(DType::F32).reshape({N, 1});
             const Tensor d = mul(mul(sub(div(e, se), target), valid), go);
             return std::vector<Tensor>{d.to(dtype)};
           });
  return out;
}

}  // namespace forge::parallel
