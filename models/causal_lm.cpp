// The shared decoder of every architecture (models/registry.h): attention with GQA, RoPE (rope
// scaling, partial rotary, per-layer theta, layers without it), optional q/k/v and o biases,
// per-head QK-norm, sliding windows and soft-caps per layer, fused or separate projections,
// SwiGLU or GeGLU MLP, RMSNorm (or Gemma's 1 + w, sandwich norms), tied or separate LM head, and
// a KV cache for generation; the options come from ModelConfig.
#include "models/causal_lm.h"

#include <cmath>

#include "core/autograd.h"
#include "core/random.h"

namespace forge::models {

KVCache KVCache::create(const ModelConfig& c, int64_t batch, int64_t capacity, DType dtype, Device device) {
  KVCache kv;
  kv.capacity = capacity;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    kv.k.push_back(Tensor::empty({batch, c.num_key_value_heads, capacity, c.head_dim}, dtype, device));
    kv.v.push_back(Tensor::empty({batch, c.num_key_value_heads, capacity, c.head_dim}, dtype, device));
  }
  return kv;
}

PagedKV PagedKV::create(const ModelConfig& c, int64_t num_blocks, int64_t block_size, DType dtype, Device device) {
  PagedKV kv;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    kv.k.push_back(Tensor::empty({num_blocks, c.num_key_value_heads, c.head_dim, block_size}, dtype, device));
    kv.v.push_back(Tensor::empty({num_blocks, c.num_key_value_heads, block_size, c.head_dim}, dtype, device));
  }
  return kv;
}

Attention::Attention(const ModelConfig& c, DType dtype, int64_t layer) : D(c.head_dim), rotates(c.layer_rotates(layer)) {
  attn_opt.window = c.window(layer);
  attn_opt.softcap = c.attn_logit_softcapping;
  if (c.query_pre_attn_scalar > 0) attn_opt.scale = 1.0 / std::sqrt(c.query_pre_attn_scalar);
  // yarn and longrope scale cos and sin (the rotated dims only, so not foldable into the scale
  // under partial rotary).
  rope_mscale = c.layer_has_own_rope(layer) ? 1.0 : c.rope_attention_factor();
  const int64_t C = c.hidden_size;
  if (c.fused_qkv) {
    qkv_proj = register_module(
        "qkv_proj", std::make_shared<nn::Linear>(C, c.q_dim() + 2 * c.kv_dim(), c.attention_bias, dtype));
    qkv_proj->segments = {c.q_dim(), c.kv_dim(), c.kv_dim()};
    qkv_proj->part_names = {"q_proj", "k_proj", "v_proj"};
  } else {
    q_proj = register_module("q_proj", std::make_shared<nn::Linear>(C, c.q_dim(), c.attention_bias, dtype));
    k_proj = register_module("k_proj", std::make_shared<nn::Linear>(C, c.kv_dim(), c.attention_bias, dtype));
    v_proj = register_module("v_proj", std::make_shared<nn::Linear>(C, c.kv_dim(), c.attention_bias, dtype));
  }
  // Llama's attention_bias also covers o_proj; Qwen2 has bias on q/k/v only.
  o_proj = register_module("o_proj", std::make_shared<nn::Linear>(c.q_dim(), C, c.o_proj_bias, dtype));
  o_proj->tp_plan = nn::Split::Rows;  // Megatron: q/k/v by output features, o by input features
  if (c.qk_norm) {
    q_norm = register_module("q_norm", std::make_shared<nn::RMSNorm>(D, c.rms_norm_eps, dtype, c.norm_unit_offset));
    k_norm = register_module("k_norm", std::make_shared<nn::RMSNorm>(D, c.rms_norm_eps, dtype, c.norm_unit_offset));
  }
}

// A per-head norm's weight as this rank uses it: under tensor parallelism each rank sees only its
// heads, so the weight's gradient is summed over the group (tp->copy's backward).
Tensor Attention::head_norm(const nn::RMSNorm& n, const Tensor& x) const {
  const Tensor w = o_proj->tp ? o_proj->tp->copy(n.weight) : n.weight;
  return rms_norm(x, w, n.eps, n.unit_offset);
}

std::array<Tensor, 3> Attention::project(const Tensor& x) const {
  if (!qkv_proj) return {q_proj->forward(x), k_proj->forward(x), v_proj->forward(x)};
  std::vector<Tensor> p = split(qkv_proj->forward(x), qkv_proj->segments, -1);
  return {p[0], p[1], p[2]};
}

Tensor Attention::forward(const Tensor& x, const Tensor& pos, const Tensor& inv_freq, const ForwardOptions& opt,
                          int layer) {
  const int64_t B = x.size(0), T = x.size(1);
  // This rank's heads: all of them, or its share under tensor parallelism (q/k/v split by columns).
  auto [q, k, v] = project(x);
  const int64_t Hq = q.size(-1) / D, Hkv = k.size(-1) / D;
  q = q.reshape({B, T, Hq, D});
  k = k.reshape({B, T, Hkv, D});
  if (q_norm) {  // QK-norm: over each head's D values, before RoPE
    q = head_norm(*q_norm, q);
    k = head_norm(*k_norm, k);
  }
  q = q.transpose(1, 2);  // [B, Hq, T, D]
  k = k.transpose(1, 2);  // [B, Hkv, T, D]
  if (rotates) {
    q = rope(q, pos, inv_freq, rope_mscale);
    k = rope(k, pos, inv_freq, rope_mscale);
  }
  v = v.reshape({B, T, Hkv, D}).transpose(1, 2);
  if (PagedKV* pk = opt.paged) {  // packed tokens of several sequences (B = 1): rows [N, H, D]
    Tensor& kc = pk->k[size_t(layer)];
    Tensor& vc = pk->v[size_t(layer)];
    paged_kv_write(kc, vc, k.select(0, 0).transpose(0, 1), v.select(0, 0).transpose(0, 1), pk->batch);
    Tensor a = paged_attention(q.select(0, 0).transpose(0, 1), kc, vc, pk->batch, attn_opt);  // [N, Hq, D]
    return o_proj->forward(a.to(x.dtype()).reshape({1, T, Hq * D}));
  }
  if (KVCache* cache = opt.cache) {
    const int64_t L = cache->length;
    FORGE_CHECK(L + T <= cache->capacity, "KV cache holds ", cache->capacity, " tokens; ", L + T, " needed");
    cache->k[layer].narrow(2, L, T).copy_(k);
    cache->v[layer].narrow(2, L, T).copy_(v);
    k = cache->k[layer].narrow(2, 0, L + T);
    v = cache->v[layer].narrow(2, 0, L + T);
  }
  AttentionOptions ao = attn_opt;  // with a cache, query i sits at key L + i: the window counts from there
  ao.doc_ids = opt.doc_ids;
  Tensor a = scaled_dot_product_attention(q, k, v, ao);  // [B, Hq, T, D]
  return o_proj->forward(a.transpose(1, 2).reshape({B, T, Hq * D}));
}

MLP::MLP(const ModelConfig& c, DType dtype) : gelu_tanh(c.mlp_act == "gelu_pytorch_tanh") {
  const int64_t C = c.hidden_size, F = c.intermediate_size;
  if (c.fused_gate_up) {
    gate_up_proj = register_module("gate_up_proj", std::make_shared<nn::Linear>(C, 2 * F, c.mlp_bias, dtype));
    gate_up_proj->segments = {F, F};
    gate_up_proj->part_names = {"gate_proj", "up_proj"};
  } else {
    gate_proj = register_module("gate_proj", std::make_shared<nn::Linear>(C, F, c.mlp_bias, dtype));
    up_proj = register_module("up_proj", std::make_shared<nn::Linear>(C, F, c.mlp_bias, dtype));
  }
  down_proj = register_module("down_proj", std::make_shared<nn::Linear>(F, C, c.mlp_bias, dtype));
  down_proj->tp_plan = nn::Split::Rows;
}

Tensor MLP::forward(const Tensor& x) const {
  Tensor g, u;
  if (gate_up_proj) {
    std::vector<Tensor> p = split(gate_up_proj->forward(x), gate_up_proj->segments, -1);
    g = p[0];
    u = p[1];
  } else {
    g = gate_proj->forward(x);
    u = up_proj->forward(x);
  }
  return down_proj->forward(mul(gelu_tanh ? gelu(g, true) : silu(g), u));
}

DecoderLayer::DecoderLayer(const ModelConfig& c, DType dtype, int64_t layer) {
  self_attn = register_module("self_attn", std::make_shared<Attention>(c, dtype, layer));
  mlp = register_module("mlp", std::make_shared<MLP>(c, dtype));
  auto norm = [&](const char* name) {
    return register_module(name, std::make_shared<nn::RMSNorm>(c.hidden_size, c.rms_norm_eps, dtype, c.norm_unit_offset));
  };
  input_layernorm = norm("input_layernorm");
  post_attention_layernorm = norm("post_attention_layernorm");
  if (c.sandwich_norms) {
    pre_feedforward_layernorm = norm("pre_feedforward_layernorm");
    post_feedforward_layernorm = norm("post_feedforward_layernorm");
  }
}

Tensor DecoderLayer::forward(const Tensor& x, const Tensor& pos, const Tensor& inv_freq, const ForwardOptions& opt,
                             int layer) {
  Tensor a = self_attn->forward(input_layernorm->forward(x), pos, inv_freq, opt, layer);
  if (!pre_feedforward_layernorm) {
    Tensor h = add(x, a);
    return add(h, mlp->forward(post_attention_layernorm->forward(h)));
  }
  Tensor h = add(x, post_attention_layernorm->forward(a));
  return add(h, post_feedforward_layernorm->forward(mlp->forward(pre_feedforward_layernorm->forward(h))));
}

Decoder::Decoder(const ModelConfig& c, DType dtype) {
  embed_tokens = register_module("embed_tokens", std::make_shared<nn::Embedding>(c.vocab_size, c.hidden_size, dtype));
  layers = register_module("layers", std::make_shared<nn::ModuleList>());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(std::make_shared<DecoderLayer>(c, dtype, i));
  norm = register_module("norm", std::make_shared<nn::RMSNorm>(c.hidden_size, c.rms_norm_eps, dtype, c.norm_unit_offset));
}

std::shared_ptr<CausalLM> CausalLM::unfilled(const ModelConfig& c, DType dtype) {
  nn::SkipInitGuard no_init;
  return std::make_shared<CausalLM>(c, dtype);
}

CausalLM::CausalLM(const ModelConfig& c, DType dtype) : cfg(c), dtype_(dtype) {
  model = register_module("model", std::make_shared<Decoder>(c, dtype));
  if (!c.tie_word_embeddings)
    lm_head = register_module("lm_head", std::make_shared<nn::Linear>(c.hidden_size, c.vocab_size, false, dtype));
  std::vector<float> f = c.inv_freq();
  inv_freq_ = Tensor::from_vector(f, {int64_t(f.size())});
  if (c.rope_local_theta > 0 && c.has_sliding_layers()) {
    f = c.local_inv_freq();
    inv_freq_local_ = Tensor::from_vector(f, {int64_t(f.size())});
  }
  if (c.rope_scaling.type == "longrope") {
    f = c.inv_freq(true);
    inv_freq_long_ = Tensor::from_vector(f, {int64_t(f.size())});
  }
}

const Tensor& CausalLM::lm_head_weight() const { return lm_head ? lm_head->weight : model->embed_tokens->weight; }

Tensor CausalLM::positions_for(const Tensor& ids, const ForwardOptions& opt) const {
  if (opt.positions.defined()) return opt.positions;
  const int64_t T = ids.size(1);
  const int64_t L = opt.cache ? opt.cache->length : 0;
  std::vector<int64_t> p(T);
  for (int64_t t = 0; t < T; ++t) p[t] = L + t;
  return Tensor::from_vector(p, {T});
}

Tensor CausalLM::embed(const Tensor& ids) const {
  FORGE_CHECK(ids.dim() == 2, "model: ids must be [B, T], got ", shape_str(ids.shape()));
  Tensor x = model->embed_tokens->forward(ids);
  if (!cfg.scale_embeddings) return x;
  // Gemma: times sqrt(hidden_size) as a scalar of the weights' dtype (HF's normalizer), so bf16
  // models multiply by the bf16-rounded value.
  const float s = Tensor::full({1}, std::sqrt(double(cfg.hidden_size)), DType::F32).to(x.dtype()).to_float_vector()[0];
  return mul(x, double(s));
}

Tensor CausalLM::run_layers(Tensor x, int64_t begin, int64_t end, const Tensor& pos_in, const ForwardOptions& opt) {
  if (inv_freq_.device() != x.device()) {  // once per device move
    inv_freq_ = inv_freq_.to(x.device());
    for (Tensor* t : {&inv_freq_local_, &inv_freq_long_})
      if (t->defined()) *t = t->to(x.device());
  }
  const bool long_context = inv_freq_long_.defined() && past_original_context(pos_in);
  const Tensor pos = pos_in.device() == x.device() ? pos_in : pos_in.to(x.device());  // once, not per rope
  for (int64_t i = begin; i < end; ++i) {
    if (checkpoint_layers && grad_enabled() && !opt.cache) {
      // Keep only the layer's input; backward runs the layer again (activation checkpointing).
      // Captures by value: the recompute runs during backward, after this call has returned.
      x = checkpoint([this, pos, inv_freq = layer_inv_freq(i, long_context), opt, i](const std::vector<Tensor>& in) {
            if (before_layer) before_layer(i);
            Tensor y = model->layer(size_t(i)).forward(in[0], pos, inv_freq, opt, int(i));
            if (after_layer && !grad_enabled()) after_layer(i);  // nothing keeps the weights
            return std::vector<Tensor>{y};
          }, {x})[0];
    } else {
      if (before_layer) before_layer(i);
      x = model->layer(size_t(i)).forward(x, pos, layer_inv_freq(i, long_context), opt, int(i));
      if (after_layer && !grad_enabled()) after_layer(i);
    }
  }
  return x;
}

Tensor CausalLM::hidden_states(const Tensor& ids, const ForwardOptions& opt) {
  FORGE_CHECK(!opt.paged || (opt.positions.defined() && ids.size(0) == 1),
              "model: a paged forward takes ids [1, N] and positions");
  Tensor x = embed(ids);
  x = run_layers(x, 0, int64_t(model->layers->size()), positions_for(ids, opt), opt);
  if (opt.cache) opt.cache->length += ids.size(1);
  return model->norm->forward(x);
}

Tensor CausalLM::forward(const Tensor& ids, const ForwardOptions& opt) {
  Tensor h = hidden_states(ids, opt);
  if (opt.last_only) h = h.narrow(1, h.size(1) - 1, 1);
  return logits(h);
}

const Tensor& CausalLM::layer_inv_freq(int64_t layer, bool long_context) const {
  if (inv_freq_local_.defined() && cfg.layer_has_own_rope(layer)) return inv_freq_local_;
  return long_context ? inv_freq_long_ : inv_freq_;
}

// longrope (Phi-3): as transformers, the long factors serve a forward whose positions reach past
// original_max_position_embeddings. Keys cached before that keep the short factors' rotation, as
// in transformers' cache.
bool CausalLM::past_original_context(const Tensor& pos) const {
  const Tensor p = pos.to(Device::cpu()).to(DType::I64).contiguous();  // a few ids; longrope models only
  const int64_t* d = p.data<int64_t>();
  const int64_t n = p.numel();
  const int64_t limit = cfg.rope_scaling.original_max_position_embeddings > 0
                            ? cfg.rope_scaling.original_max_position_embeddings
                            : cfg.max_position_embeddings;
  for (int64_t i = 0; i < n; ++i)
    if (d[i] + 1 > limit) return true;
  return false;
}

Tensor CausalLM::logits(const Tensor& h) const {
  Tensor y = head_logits(h);
  const double cap = cfg.final_logit_softcapping;
  return cap > 0 ? mul(tanh(mul(y, 1.0 / cap)), cap) : y;  // Gemma 2's final soft-cap
}

Tensor CausalLM::head_logits(const Tensor& h) const {
  if (lm_head) return lm_head->forward(h);
  // Tied: the embedding's rows are the output features (this rank's vocabulary part under tp).
  const auto& tp = model->embed_tokens->tp;
  if (!tp && nn::use_packed(packed_lm_head_, h))
    return linear_packed(h, packed_lm_head_, model->embed_tokens->weight.size(0));
  return linear(tp ? tp->copy(h) : h, model->embed_tokens->weight);
}

void CausalLM::store_weights_transposed() {
  NoGradGuard ng;
  auto to_column_major = [](const Tensor& w) {
    if (w.defined() && w.dim() == 2 && w.dtype() == DType::F32 && w.stride(0) != 1) w.set_data(w.detach().t().contiguous().t());
  };
  for (auto& [name, m] : named_modules())
    if (auto lin = std::dynamic_pointer_cast<nn::Linear>(m)) to_column_major(lin->weight);
  if (!lm_head) to_column_major(model->embed_tokens->weight);
}

void CausalLM::pack_for_decode() {
  NoGradGuard ng;
  for (auto& [name, m] : named_modules())
    if (auto lin = std::dynamic_pointer_cast<nn::Linear>(m)) lin->pack();
  const Tensor& emb = model->embed_tokens->weight;
  if (!lm_head && !model->embed_tokens->tp && nn::packable(emb))
    packed_lm_head_ = pack_linear_weight(emb);
}

void CausalLM::init_weights(double std, uint64_t seed) {
  NoGradGuard ng;
  Generator gen(seed);
  for (auto& [name, p] : named_parameters()) {
    const bool is_norm = name.size() >= 11 && name.find("norm.weight") == name.size() - 11;
    const bool is_bias = name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    if (is_norm) {
      p.fill_(cfg.norm_unit_offset ? 0.0 : 1.0);  // the identity either way
    } else if (is_bias) {
      p.fill_(0.0);
    } else {
      Tensor w = Tensor::empty(p.shape(), DType::F32);
      normal_(w, 0.0, std, &gen);
      p.copy_(w);
    }
  }
}

}  // namespace forge::models
