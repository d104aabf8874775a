// A rank's part of a tensor- and pipeline-parallel model (see model_parallel.h).
#include "parallel/model_parallel.h"

#include <tuple>

#include "core/autograd.h"
#include "core/error.h"
#include "models/naming.h"

namespace forge::parallel {
namespace {
constexpr int kTiedGrad = 13, kTiedWeight = 14, kGather = 15;

NamedTensors all_parameters(const models::CausalLM& model, const peft::LoraModel* lora) {
  NamedTensors all = model.named_parameters();
  if (lora)
    for (auto& np : lora->named_parameters()) all.push_back(np);
  return all;
}
}  // namespace


ModelParallel::ModelParallel(const Mesh& mesh, models::CausalLM& model, peft::LoraModel* lora)
    : mesh_(mesh), model_(model), lora_(lora) {
  const int64_t L = model.config().num_hidden_layers, pp = mesh.shape().pp, s = mesh.pp_rank();
  FORGE_CHECK(L >= pp, "parallel.pp=", pp, " is more stages than the model's ", L, " layers");
  std::tie(begin_, end_) = layers_of_stage(s);
  splits_ = shard_model(model, lora, mesh.tp());
  const Tensor& embed = model.model->embed_tokens->weight;
  tied_ = pp > 1 && model.config().tie_word_embeddings && embed.requires_grad();
  const bool keep_copy = pp > 1 && model.config().tie_word_embeddings && last_stage();
  NoGradGuard ng;
  for (auto& [name, p] : all_parameters(model, lora))
    if (stage_of(name) != s && !(keep_copy && name == models::kEmbedWeight))
      p.set_data(Tensor::empty({0}, p.dtype(), p.device()));
}

std::pair<int64_t, int64_t> ModelParallel::layers_of_stage(int64_t s) const {
  const int64_t L = model_.config().num_hidden_layers, pp = mesh_.shape().pp;
  const int64_t b = s * (L / pp) + std::min(s, L % pp);
  return {b, b + L / pp + (s < L % pp ? 1 : 0)};
}

int ModelParallel::stage_of(const std::string& name) const {
  const int last = mesh_.shape().pp - 1;
  if (const int layer = models::layer_of(name); layer >= 0)
    for (int s = 0; s <= last; ++s)
      if (auto [b, e] = layers_of_stage(s); layer >= b && layer < e) return s;
  if (models::is_embedding(name)) return 0;
  if (models::is_final_norm_or_head(name)) return last;
  throw Error("pipeline: no stage for parameter '" + name + "'");
}

NamedTensors ModelParallel::trained_here(const NamedTensors& all) const {
  NamedTensors out;
  for (auto& [n, p] : all)
    if (stage_of(n) == mesh_.pp_rank()) out.emplace_back(n, p);
  return out;
}

double ModelParallel::norm_weight(const std::string& name) const {
  auto it = splits_.find(name);
  FORGE_CHECK(it != splits_.end(), "norm_weight: unknown parameter '", name, "'");
  return it->second.dim >= 0 ? 1.0 : 1.0 / double(mesh_.shape().tp);
}

Tensor ModelParallel::loss_sum(const Tensor& hidden, const Tensor& labels) const {
  Tensor logits = model_.logits(model_.model->norm->forward(hidden));
  const int64_t V = logits.size(-1);
  if (mesh_.shape().tp == 1) return cross_entropy(logits.view({-1, V}), labels.view({-1}), -100, Reduction::Sum);
  return vocab_parallel_cross_entropy(logits.view({-1, V}), labels.reshape({-1}), int64_t(mesh_.tp_rank()) * V,
                                      mesh_.tp());
}

Tensor ModelParallel::token_logps(const Tensor& hidden, const Tensor& labels, double temperature) const {
  Tensor logits = model_.logits(model_.model->norm->forward(hidden));
  if (temperature != 1.0) logits = mul(logits, double(float(1.0 / temperature)));  // as the engine scales them
  const int64_t B = labels.size(0), V = logits.size(-1);
  Tensor ce = mesh_.shape().tp == 1
                  ? cross_entropy(logits.view({-1, V}), labels.view({-1}), -100, Reduction::None)
                  : vocab_parallel_cross_entropy(logits.view({-1, V}), labels.reshape({-1}), int64_t(mesh_.tp_rank()) * V,
                                                 mesh_.tp(), -100, Reduction::None);
  return neg(ce.reshape({B, -1}));
}

Tensor ModelParallel::row_logps(const Tensor& hidden, const Tensor& labels) const {
  return sum(token_logps(hidden, labels), {1});
}

void ModelParallel::tied_send_grad() {
  if (!tied_ || !last_stage()) return;
  NoGradGuard ng;
  Tensor w = model_.model->embed_tokens->weight;  // a handle to the parameter itself
  Tensor g = w.grad().defined() ? w.grad().contiguous() : Tensor::zeros(w.shape(), w.dtype(), w.device());
  mesh_.pp().send(g, 0, kTiedGrad);
  w.set_grad(Tensor());
}

void ModelParallel::tied_add_grad() {
  if (!tied_ || !first_stage()) return;
  NoGradGuard ng;
  Tensor w = model_.model->embed_tokens->weight;  // a handle to the parameter itself
  Tensor g = Tensor::empty(w.shape(), w.dtype(), w.device());
  mesh_.pp().recv(g, mesh_.shape().pp - 1, kTiedGrad);
  w.set_grad(w.grad().defined() ? add(w.grad(), g) : g);
}

void ModelParallel::tied_sync_weight() {
  if (!tied_) return;
  NoGradGuard ng;
  Tensor w = model_.model->embed_tokens->weight.detach();
  if (first_stage()) mesh_.pp().send(w, mesh_.shape().pp - 1, kTiedWeight);
  else if (last_stage()) mesh_.pp().recv(w, 0, kTiedWeight);
}

void ModelParallel::gather_to_rank0() {
  if (mesh_.shape().tp == 1 && mesh_.shape().pp == 1) return;  // every replica is whole already
  Communicator& world = mesh_.world();
  const int me = world.rank();
  NoGradGuard ng;
  for (auto& [name, p] : all_parameters(model_, lora_)) {
    const ParamSplit& sp = splits_.at(name);
    const int st = stage_of(name);
    const int pieces = sp.dim >= 0 ? mesh_.shape().tp : 1;
    Tensor full = me == 0 ? Tensor::empty(sp.full, p.dtype()) : Tensor();
    for (int t = 0; t < pieces; ++t) {
      const int src = mesh_.rank_of(0, t, st);
      if (me != 0 && me != src) continue;
      if (me == src && me != 0) {  // through the host: the world group is MPI, and the weights go to disk
        world.send(p.detach().to(Device::cpu()).contiguous(), 0, kGather);
        continue;
      }
      Tensor piece = p.detach();
      if (src != 0) {
        Shape shape = sp.full;
        if (sp.dim >= 0) shape[size_t(sp.dim)] /= pieces;
        piece = Tensor::empty(shape, p.dtype());
        world.recv(piece, src, kGather);
      }
      if (sp.dim >= 0) place_tp_part(full, piece, sp.dim, t, pieces, sp.segments);
      else full.copy_(piece);
    }
    if (me == 0) p.set_data(full);
  }
}

}  // namespace forge::parallel
