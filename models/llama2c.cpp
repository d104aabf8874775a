// llama2.c checkpoint reader (see llama2c.h). Layout: 7 x int32 header (dim, hidden_dim,
// n_layers, n_heads, n_kv_heads, vocab_size (negative: separate classifier), seq_len), then f32
// arrays in a fixed order.
#include "models/llama2c.h"

#include <cstring>

#include "core/autograd.h"
#include "core/error.h"
#include "core/file_util.h"

namespace forge::models {
namespace {
// llama2.c rotates pairs (2i, 2i+1) of each head; HF rotates (i, i + D/2).
std::vector<float> permute_rows(const float* w, int64_t heads, int64_t D, int64_t cols) {
  std::vector<float> out(size_t(heads * D * cols));
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < D / 2; ++i)
      for (int64_t half = 0; half < 2; ++half) {
        const float* src = w + ((h * D) + 2 * i + half) * cols;
        std::memcpy(&out[size_t(((h * D) + half * (D / 2) + i) * cols)], src, size_t(cols) * sizeof(float));
      }
  return out;
}
}  // namespace

std::shared_ptr<CausalLM> load_llama2c(const std::string& path) {
  const std::string bytes = read_text_file(path);
  FORGE_CHECK(bytes.size() >= 28, path, ": too short for a llama2.c header");
  int32_t h[7];
  std::memcpy(h, bytes.data(), sizeof h);
  ModelConfig c;
  c.hidden_size = h[0];
  c.intermediate_size = h[1];
  c.num_hidden_layers = h[2];
  c.num_attention_heads = h[3];
  c.num_key_value_heads = h[4];
  c.vocab_size = std::abs(h[5]);
  c.max_position_embeddings = h[6];
  c.tie_word_embeddings = h[5] > 0;
  for (int k = 0; k < 7; ++k) FORGE_CHECK(h[k] != 0 && (k == 5 || h[k] > 0), path, ": bad header field ", k);
  FORGE_CHECK(c.hidden_size % c.num_attention_heads == 0, path, ": dim not divisible by heads");
  c.head_dim = c.hidden_size / c.num_attention_heads;
  c.rms_norm_eps = 1e-5;
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  const int64_t C = c.hidden_size, F = c.intermediate_size, L = c.num_hidden_layers, V = c.vocab_size;
  const int64_t D = c.head_dim, KV = c.kv_dim();
  // In 128 bits: a hostile header's sizes overflow int64 long before they are compared with the file.
  using i128 = __int128;
  const i128 need128 = i128(V) * C + i128(L) * (C + i128(C) * C + 2 * i128(KV) * C + i128(C) * C + C + 3 * i128(F) * C) +
                       C + i128(c.max_position_embeddings) * D + (c.tie_word_embeddings ? 0 : i128(V) * C);
  FORGE_CHECK(i128(bytes.size()) >= 28 + need128 * 4, path, ": truncated (", bytes.size(), " bytes, expected ",
              double(28 + need128 * 4), ")");
  const float* p = reinterpret_cast<const float*>(bytes.data() + 28);
  auto take = [&](int64_t n) {
    const float* q = p;
    p += n;
    return q;
  };
  auto model = CausalLM::unfilled(c, DType::F32);  // every weight is copied in below
  NoGradGuard ng;
  auto put = [](const Tensor& dst, const float* src) {
    std::memcpy(dst.raw_data(), src, size_t(dst.numel()) * sizeof(float));
  };
  put(model->model->embed_tokens->weight, take(V * C));
  const float* rms_att = take(L * C);
  const float* wq = take(L * C * C);
  const float* wk = take(L * KV * C);
  const float* wv = take(L * KV * C);
  const float* wo = take(L * C * C);
  const float* rms_ffn = take(L * C);
  const float* w1 = take(L * F * C);
  const float* w2 = take(L * C * F);
  const float* w3 = take(L * F * C);
  for (int64_t l = 0; l < L; ++l) {
    DecoderLayer& d = model->model->layer(size_t(l));
    put(d.input_layernorm->weight, rms_att + l * C);
    put(d.self_attn->q_proj->weight, permute_rows(wq + l * C * C, c.num_attention_heads, D, C).data());
    put(d.self_attn->k_proj->weight, permute_rows(wk + l * KV * C, c.num_key_value_heads, D, C).data());
    put(d.self_attn->v_proj->weight, wv + l * KV * C);
    put(d.self_attn->o_proj->weight, wo + l * C * C);
    put(d.post_attention_layernorm->weight, rms_ffn + l * C);
    put(d.mlp->gate_proj->weight, w1 + l * F * C);
    put(d.mlp->down_proj->weight, w2 + l * C * F);
    put(d.mlp->up_proj->weight, w3 + l * F * C);
  }
  put(model->model->norm->weight, take(C));
  take(c.max_position_embeddings * D);  // freq_cis (legacy, unused)
  if (!c.tie_word_embeddings) put(model->lm_head->weight, take(V * C));
  return model;
}

}  // namespace forge::models
