// The shared decoder every architecture builds (models/registry.h picks the architecture; its
// options live in ModelConfig): nn::Linear / RMSNorm / Embedding modules named as HF names them
// (`model.layers.0.self_attn.q_proj`), so checkpoints load and adapters attach by HF name.
#pragma once
#include <array>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/nn.h"
#include "models/config.h"

namespace forge::models {

// Contiguous per-layer key/value cache for generation: k, v [B, Hkv, capacity, D].
struct KVCache {
  std::vector<Tensor> k, v;
  int64_t length = 0;  // tokens already cached (the same for every sequence of the batch)
  int64_t capacity = 0;
  static KVCache create(const ModelConfig& c, int64_t batch, int64_t capacity, DType dtype,
                        Device device = Device::cpu());
};

// The serving engine's paged KV cache and the layout of one step's packed tokens (see
// core/ops.h PagedBatch). With it, forward takes ids [1, N]: the new tokens of several sequences.
struct PagedKV {
  std::vector<Tensor> k, v;  // per layer: k [num_blocks, Hkv, D, block_size], v [num_blocks, Hkv, block_size, D]
  PagedBatch batch;
  static PagedKV create(const ModelConfig& c, int64_t num_blocks, int64_t block_size, DType dtype,
                        Device device = Device::cpu());
};

struct ForwardOptions {
  Tensor positions;          // [B, T] or [T] int; default: cache length + arange(T)
  Tensor doc_ids;            // [B, T] packed documents (training; no cache)
  KVCache* cache = nullptr;  // appends this call's keys/values (inference, no grad)
  PagedKV* paged = nullptr;  // serving: positions must be given ([N])
  bool last_only = false;    // logits for the last position only: [B, 1, V]
};

class Attention : public nn::Module {
 public:
  Attention(const ModelConfig& c, DType dtype, int64_t layer);  // layer: picks its window
  // x [B, T, C] -> [B, T, C]
  Tensor forward(const Tensor& x, const Tensor& pos, const Tensor& inv_freq, const ForwardOptions& opt, int layer);
  std::shared_ptr<nn::Linear> q_proj, k_proj, v_proj, o_proj;  // q/k/v null when fused
  std::shared_ptr<nn::Linear> qkv_proj;                         // fused (Phi-3), or null
  std::shared_ptr<nn::RMSNorm> q_norm, k_norm;  // QK-norm (Qwen3), or null

 private:
  Tensor head_norm(const nn::RMSNorm& n, const Tensor& x) const;
  std::array<Tensor, 3> project(const Tensor& x) const;  // q, k, v [B, T, heads * D] (this rank's heads)
  int64_t D;                   // heads come from q/k_proj's out_features (fewer per rank under tp)
  AttentionOptions attn_opt;  // the layer's window, scale and soft-cap
  bool rotates;               // false: no RoPE in this layer (SmolLM3)
  double rope_mscale;         // yarn / longrope's factor on cos and sin (1 otherwise)
};

class MLP : public nn::Module {
 public:
  MLP(const ModelConfig& c, DType dtype);
  Tensor forward(const Tensor& x) const;  // down(act(gate(x)) * up(x)), act silu or tanh-GELU
  std::shared_ptr<nn::Linear> gate_proj, up_proj, down_proj;  // gate/up null when fused
  std::shared_ptr<nn::Linear> gate_up_proj;                   // fused (Phi-3), or null

 private:
  bool gelu_tanh;
};

class DecoderLayer : public nn::Module {
 public:
  DecoderLayer(const ModelConfig& c, DType dtype, int64_t layer);
  Tensor forward(const Tensor& x, const Tensor& pos, const Tensor& inv_freq, const ForwardOptions& opt, int layer);
  std::shared_ptr<Attention> self_attn;
  std::shared_ptr<MLP> mlp;
  // Llama: post_attention_layernorm is the MLP's input norm. Gemma (sandwich_norms): it normalises
  // the attention's output, and pre_/post_feedforward_layernorm wrap the MLP.
  std::shared_ptr<nn::RMSNorm> input_layernorm, post_attention_layernorm;
  std::shared_ptr<nn::RMSNorm> pre_feedforward_layernorm, post_feedforward_layernorm;  // or null
};

// The body ("model." in HF names): embeddings, layers, final norm.
class Decoder : public nn::Module {
 public:
  Decoder(const ModelConfig& c, DType dtype);
  std::shared_ptr<nn::Embedding> embed_tokens;
  std::shared_ptr<nn::ModuleList> layers;
  std::shared_ptr<nn::RMSNorm> norm;
  DecoderLayer& layer(size_t i) const { return static_cast<DecoderLayer&>(*(*layers)[i]); }
};

class CausalLM : public nn::Module {
 public:
  explicit CausalLM(const ModelConfig& c, DType dtype = DType::F32);
  // The same with every Linear and Embedding weight left unfilled (nn::SkipInitGuard), for
  // loaders and init_weights, which set each one.
  static std::shared_ptr<CausalLM> unfilled(const ModelConfig& c, DType dtype);
  // ids [B, T] -> final hidden states [B, T, C] (after the last norm).
  Tensor hidden_states(const Tensor& ids, const ForwardOptions& opt = {});
  // The pieces of hidden_states, for pipeline stages: the embedding, layers [begin, end) (pos
  // from positions_for) and, on the last stage, model->norm and logits().
  Tensor embed(const Tensor& ids) const;
  Tensor run_layers(Tensor x, int64_t begin, int64_t end, const Tensor& pos, const ForwardOptions& opt);
  Tensor positions_for(const Tensor& ids, const ForwardOptions& opt) const;  // opt.positions or cache length + arange
  // ids [B, T] -> logits [B, T, V] (or [B, 1, V] with last_only), in the model's dtype.
  Tensor forward(const Tensor& ids, const ForwardOptions& opt = {});
  // Final hidden states [..., C] -> logits [..., V] (this rank's V / tp under tensor parallelism).
  Tensor logits(const Tensor& h) const;
  const Tensor& lm_head_weight() const;  // the embedding when tied
  const ModelConfig& config() const { return cfg; }
  DType dtype() const { return dtype_; }
  Device device() const { return model->embed_tokens->weight.device(); }  // where the weights are

  // For serving on the CPU: every f32 Linear weight [out, in] (and a tied embedding) is re-stored
  // column-major, i.e. as W^T [in, out] contiguous behind the same [out, in] view, so x W^T reaches
  // the GEMM as an untransposed A B, which oneDNN's sgemm packs much faster at decode's few rows
  // (`forge bench ops`, a stories15M step's linears at 32 rows: ~240 vs ~165 GFLOP/s; at 1 row
  // within 5%). bf16 weights stay as they are: oneDNN's bf16 matmul gains nothing from it.
  // Names, shapes, values and saved files are unchanged. Inference only: optimisers expect
  // contiguous parameters.
  void store_weights_transposed();
  // For serving on the CPU: every packable Linear (f32, or bf16 with AVX-512: nn::packable) and a
  // tied LM head also gets a packed inference twin (nn::Linear::packed) that decode steps of up to
  // 64 rows run on: ~1.3x oneDNN's sgemm at a stories15M step's shapes and 32 rows, and a row's
  // logits are the same bits whatever else is in the batch. Costs a second copy of the weights.
  // Inference only: the twins are frozen.
  void pack_for_decode();

  // Re-initialises every weight as HF does: normal(0, std) for Linear/Embedding, biases 0, norms 1.
  void init_weights(double std, uint64_t seed);

  ModelConfig cfg;
  bool checkpoint_layers = false;  // activation checkpointing: recompute each layer in backward
  // Called around each decoder layer's forward (also its recompute in backward); after_layer
  // only when no graph keeps the layer's weights (grad off). ZeRO-3 gathers and frees by them.
  std::function<void(int64_t layer)> before_layer, after_layer;
  std::shared_ptr<Decoder> model;
  std::shared_ptr<nn::Linear> lm_head;  // null when tied

 private:
  DType dtype_;
  Tensor inv_freq_, inv_freq_local_;  // local: sliding layers' own (Gemma 3), or undefined
  Tensor inv_freq_long_;  // longrope's long factors (sequences past the original context), or undefined
  Tensor packed_lm_head_;  // pack_for_decode's twin of a tied LM head
  const Tensor& layer_inv_freq(int64_t layer, bool long_context) const;
  bool past_original_context(const Tensor& pos) const;
  Tensor head_logits(const Tensor& h) const;  // logits before the final soft-cap
};

}  // namespace forge::models
