// GemmaForCausalLM, Gemma2ForCausalLM and Gemma3ForCausalLM (transformers' modeling_gemma*.py):
// the shared decoder with every RMSNorm applied as (1 + w), GeGLU (tanh GELU) MLPs, embeddings
// scaled by sqrt(hidden_size), and head_dim from the config.
// - Gemma 2 and 3 add sandwich norms (the attention's output and the MLP are each normalised
//   before their residual add), a scale of 1/sqrt(query_pre_attn_scalar), and sliding-window
//   layers: every other one from layer 0 (Gemma 2), five in six (Gemma 3's
//   sliding_window_pattern), or as layer_types lists them.
// - Gemma 2 soft-caps attention scores (attn_logit_softcapping) and logits
//   (final_logit_softcapping).
// - Gemma 3 adds QK-norm; its sliding layers use rope_local_base_freq, unscaled, while the global
//   layers use rope_theta with rope_scaling.
#include "core/error.h"
#include "models/registry.h"

namespace forge::models {
namespace {
// hidden_activation (hidden_act in older files) must be the tanh GELU; Gemma 1 files say "gelu",
// which transformers' Gemma also runs as the tanh GELU.
void read_act(const ConfigReader& r, bool allow_plain_gelu) {
  const std::string act = r.get_str("hidden_activation", r.get_str("hidden_act", "gelu_pytorch_tanh"));
  FORGE_CHECK(act == "gelu_pytorch_tanh" || (allow_plain_gelu && act == "gelu"), r.path, ": hidden_activation '",
              act, "' is not supported for this architecture (gelu_pytorch_tanh)");
}

void common(const ConfigReader& r, ModelConfig& c) {
  c.norm_unit_offset = true;
  c.mlp_act = "gelu_pytorch_tanh";
  c.scale_embeddings = true;
  c.attention_bias = c.o_proj_bias = r.get_bool("attention_bias", false);
}

void parse_gemma(const ConfigReader& r, ModelConfig& c) {
  read_act(r, true);
  common(r, c);
}

// Gemma 2 and 3: sandwich norms, the query scale, windows from `pattern` (layer i slides unless
// (i + 1) % pattern == 0) when layer_types is absent.
void parse_sandwich(const ConfigReader& r, ModelConfig& c, int64_t pattern) {
  read_act(r, false);
  common(r, c);
  c.sandwich_norms = true;
  c.query_pre_attn_scalar = r.get_num("query_pre_attn_scalar", double(c.head_dim));
  FORGE_CHECK(c.query_pre_attn_scalar > 0, r.path, ": 'query_pre_attn_scalar' must be positive");
  c.sliding_window = r.get_int("sliding_window", 4096);
  FORGE_CHECK(pattern > 0, r.path, ": 'sliding_window_pattern' must be positive, got ", pattern);
  r.read_layer_types(c, [pattern](int64_t i) { return (i + 1) % pattern != 0; });
}

void parse_gemma2(const ConfigReader& r, ModelConfig& c) {
  parse_sandwich(r, c, 2);
  c.attn_logit_softcapping = r.get_num("attn_logit_softcapping", 0.0);
  c.final_logit_softcapping = r.get_num("final_logit_softcapping", 0.0);
  FORGE_CHECK(c.attn_logit_softcapping >= 0 && c.final_logit_softcapping >= 0, r.path,
              ": soft-caps must be positive or null");
}

void parse_gemma3(const ConfigReader& r, ModelConfig& c) {
  parse_sandwich(r, c, r.get_int("sliding_window_pattern", 6));
  c.qk_norm = true;
  if (c.rope_local_theta == 0) c.rope_local_theta = r.get_num("rope_local_base_freq", 10000.0);
  for (const char* key : {"attn_logit_softcapping", "final_logit_softcapping"})
    FORGE_CHECK(!r.has(key), r.path, ": '", key, "' is not supported for Gemma 3 (transformers ignores it)");
}

void write_common(const ModelConfig& c, nlohmann::json& j) {
  j["hidden_activation"] = "gelu_pytorch_tanh";
  j["hidden_act"] = "gelu_pytorch_tanh";
  j["attention_bias"] = c.attention_bias;
}
void write_sandwich(const ModelConfig& c, nlohmann::json& j) {
  write_common(c, j);
  j["query_pre_attn_scalar"] = c.query_pre_attn_scalar;
  j["sliding_window"] = c.sliding_window;
}
void write_gemma2(const ModelConfig& c, nlohmann::json& j) {
  write_sandwich(c, j);
  auto cap = [](double v) { return v > 0 ? nlohmann::json(v) : nlohmann::json(nullptr); };
  j["attn_logit_softcapping"] = cap(c.attn_logit_softcapping);
  j["final_logit_softcapping"] = cap(c.final_logit_softcapping);
}
void write_gemma3(const ModelConfig& c, nlohmann::json& j) {
  write_sandwich(c, j);
  j["rope_local_base_freq"] = c.rope_local_theta;
}

void defaults_gemma(ModelConfig& c) {
  c.norm_unit_offset = c.scale_embeddings = true;
  c.mlp_act = "gelu_pytorch_tanh";
  c.rms_norm_eps = 1e-6;
  c.rope_theta = 10000.0;
}
void defaults_sandwich(ModelConfig& c, int64_t pattern) {
  defaults_gemma(c);
  c.sandwich_norms = true;
  c.query_pre_attn_scalar = double(c.head_dim);
  c.sliding_window = 4096;
  c.layer_types.clear();
  for (int64_t i = 0; i < c.num_hidden_layers; ++i)
    c.layer_types.push_back((i + 1) % pattern ? "sliding_attention" : "full_attention");
}
void defaults_gemma2(ModelConfig& c) {
  defaults_sandwich(c, 2);
  c.attn_logit_softcapping = 50.0;
  c.final_logit_softcapping = 30.0;
}
void defaults_gemma3(ModelConfig& c) {
  defaults_sandwich(c, 6);
  c.qk_norm = true;
  c.rope_theta = 1000000.0;
  c.rope_local_theta = 10000.0;
}
}  // namespace

extern const Architecture kGemma{"GemmaForCausalLM", "gemma", parse_gemma, write_common, defaults_gemma};
extern const Architecture kGemma2{"Gemma2ForCausalLM", "gemma2", parse_gemma2, write_gemma2, defaults_gemma2};
// Gemma 3 4B-27B checkpoints. Their text_config leaves out what Gemma3TextConfig defaults (4B's
// gives only sizes, rope_scaling and sliding_window). transformers 4.50 saved the text weights as
// language_model.model.*, 4.52 on as model.language_model.* with lm_head beside.
extern const TextModelOf kGemma3Multimodal{
    "Gemma3ForConditionalGeneration",
    "Gemma3ForCausalLM",
    R"({"vocab_size": 262208, "hidden_size": 2304, "intermediate_size": 9216, "num_hidden_layers": 26,
        "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "max_position_embeddings": 131072,
        "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0,
        "query_pre_attn_scalar": 256, "sliding_window": 4096, "sliding_window_pattern": 6,
        "hidden_activation": "gelu_pytorch_tanh", "tie_word_embeddings": true, "attention_bias": false,
        "bos_token_id": 2, "eos_token_id": 1})",
    {{{"model.", "language_model.model."}, {"lm_head.", "language_model.lm_head."}},
     {{"model.", "model.language_model."}, {"lm_head.", "lm_head."}}},
    {"vision_tower.", "multi_modal_projector.", "model.vision_tower.", "model.multi_modal_projector."}};

extern const Architecture kGemma3{"Gemma3ForCausalLM", "gemma3_text", parse_gemma3, write_gemma3, defaults_gemma3,
                                   "gemma3"};

}  // namespace forge::models
