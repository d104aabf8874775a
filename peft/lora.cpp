// LoRA layers, target matching, attaching and merging.
#include "peft/lora.h"

#include <cmath>
#include <regex>

#include "core/autograd.h"
#include "core/error.h"
#include "models/naming.h"

namespace forge::peft {

double LoraConfig::scale(int64_t rank) const {
  return use_rslora ? alpha / std::sqrt(double(rank)) : alpha / double(rank);
}

LoraAdapter::LoraAdapter(int64_t in, int64_t out, int64_t r, double scale_, double dropout_, Generator* g)
    : scale(scale_), dropout(dropout_), gen(g) {
  A = Tensor::empty({r, in});
  uniform_(A, -1.0 / std::sqrt(double(in)), 1.0 / std::sqrt(double(in)), gen);
  B = Tensor::zeros({out, r});
  A.requires_grad_();
  B.requires_grad_();
}

Tensor LoraAdapter::forward(const Tensor& x) {
  if (!enabled) return Tensor();  // every tp rank skips alike, so no collective is left waiting
  Tensor h = x.to(A.dtype());
  if (dropout > 0 && training) h = forge::dropout(h, dropout, true, gen);
  Tensor z = linear(h, A);  // [..., r]
  // Columns: every rank has all of z, and its gradient must be the sum of the ranks' parts of B.
  // Rows: each rank has a partial z from its input features; summing makes it whole. Either way
  // the delta is added outside the base layer's collective, so it is never counted twice.
  if (split == nn::Split::Columns) z = tp->copy(z);
  else if (split == nn::Split::Rows) z = tp->reduce(z);
  Tensor y = mul(linear(z, B), scale);
  return y.to(x.dtype());
}

std::vector<std::pair<std::string, Tensor>> LoraModel::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [name, a] : adapters) {
    out.emplace_back(models::kPeftPrefix + name + ".lora_A.weight", a->A);
    out.emplace_back(models::kPeftPrefix + name + ".lora_B.weight", a->B);
  }
  return out;
}

std::vector<Tensor> LoraModel::parameters() const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters()) out.push_back(t);
  return out;
}

void LoraModel::train(bool on) {
  for (auto& [n, a] : adapters) a->training = on;
}

void LoraModel::set_enabled(bool on) {
  for (auto& [n, a] : adapters) a->enabled = on;
}

bool module_matches(const std::string& name, const std::string& entry) {
  return name == entry ||
         (name.size() > entry.size() && name.compare(name.size() - entry.size() - 1, std::string::npos, "." + entry) == 0);
}

std::vector<std::string> match_targets(const nn::Module& model, const LoraConfig& cfg) {
  std::vector<std::string> names, linears;
  const bool all_linear = cfg.target_regex.empty() && cfg.target_modules.size() == 1 &&
                          cfg.target_modules[0] == "all-linear";
  std::regex re;
  if (!cfg.target_regex.empty()) {
    try {
      re = std::regex(cfg.target_regex);
    } catch (const std::regex_error& e) {
      throw Error("target_modules: '" + cfg.target_regex + "' is not a valid regular expression (" + e.what() + ")");
    }
  }
  for (auto& [name, m] : model.named_modules()) {
    auto lin = std::dynamic_pointer_cast<nn::Linear>(m);
    if (!lin) continue;
    linears.push_back(name);
    bool hit = false;
    if (all_linear) {
      hit = name != "lm_head";
    } else if (!cfg.target_regex.empty()) {
      hit = std::regex_match(name, re);
    } else {
      for (auto& t : cfg.target_modules) {
        hit |= module_matches(name, t);
        // A fused projection answers to its parts' names too (Phi-3's qkv_proj to q_proj, ...), so
        // recipes written for separate projections adapt it; the adapter keeps PEFT's fused name.
        const std::string parent = name.substr(0, name.rfind('.') + 1);
        for (const std::string& part : lin->part_names) hit |= module_matches(parent + part, t);
      }
    }
    if (hit) names.push_back(name);
  }
  if (names.empty()) {
    std::string some;
    for (size_t i = 0; i < linears.size() && i < 8; ++i) some += (i ? ", " : "") + linears[i];
    std::string want = cfg.target_regex;
    for (auto& t : cfg.target_modules) want += (want.empty() ? "" : ", ") + t;
    throw Error("target_modules [" + want + "] match no Linear module of the model (it has e.g. " + some + ")");
  }
  return names;
}

LoraModel apply_lora(nn::Module& model, const LoraConfig& cfg, uint64_t seed) {
  FORGE_CHECK(cfg.r >= 1, "LoRA rank r must be at least 1, got ", cfg.r);
  LoraModel lora;
  lora.config = cfg;
  lora.gen = std::make_shared<Generator>(seed);
  for (auto& p : model.parameters()) p.requires_grad_(false);
  std::map<std::string, std::shared_ptr<nn::Module>> mods;
  for (auto& [n, m] : model.named_modules()) mods[n] = m;
  for (const std::string& name : match_targets(model, cfg)) {
    auto lin = std::dynamic_pointer_cast<nn::Linear>(mods.at(name));
    auto a = std::make_shared<LoraAdapter>(lin->in_features, lin->out_features, cfg.r, cfg.scale(cfg.r), cfg.dropout,
                                           lora.gen.get());
    lin->adapter = a;
    lora.adapters.emplace_back(name, a);
  }
  return lora;
}

void merge_lora(nn::Module& model, LoraModel& lora) {
  NoGradGuard ng;
  std::map<std::string, std::shared_ptr<nn::Module>> mods;
  for (auto& [n, m] : model.named_modules()) mods[n] = m;
  for (auto& [name, a] : lora.adapters) {
    auto it = mods.find(name);
    FORGE_CHECK(it != mods.end(), "merge: the model has no module '", name, "'");
    auto lin = std::dynamic_pointer_cast<nn::Linear>(it->second);
    FORGE_CHECK(lin, "merge: '", name, "' is not a Linear");
    Tensor delta = mul(matmul(a->B.to(DType::F32), a->A.to(DType::F32)), a->scale);  // [out, in]
    FORGE_CHECK(delta.shape() == lin->weight.shape(), "merge: adapter of '", name, "' gives ", shape_str(delta.shape()),
                " but the weight is ", shape_str(lin->weight.shape()));
    lin->weight.copy_(add(lin->weight.to(DType::F32), delta));
    if (lin->adapter.get() == a.get()) lin->adapter.reset();
  }
  lora.adapters.clear();
}

}  // namespace forge::peft
