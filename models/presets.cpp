// Preset shapes (see presets.h).
#include "models/presets.h"

#include "core/error.h"
#include "models/registry.h"

namespace forge::models {
namespace {
struct Shape {
  const char* name;
  int64_t dim, hidden, layers, heads, kv_heads, vocab, max_seq;
  bool tied;
  const char* arch = nullptr;  // a released model's shape: its architecture, whatever --arch says
  int64_t head_dim = 0;        // 0: dim / heads
  void (*finish)(ModelConfig& c) = nullptr;  // the model's own options beyond its family's defaults
};

// Gemma 3 1B: windows of 512 (on five layers in six, as Gemma 3's defaults place them).
void gemma3_1b(ModelConfig& c) { c.sliding_window = 512; }
// Phi-4-mini: longrope over 96 of 128 dims (Phi-3's defaults: partial rotary 0.75) from an
// original 4096 (factors of 1: the cost is the same).
void phi4_mini(ModelConfig& c) {
  c.rope_scaling.type = "longrope";
  c.rope_scaling.factor = 0;
  c.rope_scaling.original_max_position_embeddings = 4096;
  c.rope_scaling.short_factor.assign(48, 1.0);
  c.rope_scaling.long_factor.assign(48, 1.0);
}
const Shape kShapes[] = {
    {"tiny", 64, 172, 2, 4, 2, 512, 256, true},
    {"stories15M", 288, 768, 6, 6, 6, 32000, 256, true},
    {"gqa-60M", 512, 1536, 8, 8, 2, 32000, 512, false},
    {"stories110M", 768, 2048, 12, 12, 12, 32000, 1024, true},
    {"llama-1b", 2048, 8192, 16, 32, 8, 128256, 2048, true},
    // Released models' shapes (config.json of Qwen/Qwen3-0.6B, google/gemma-3-1b-it,
    // microsoft/Phi-4-mini-instruct), random weights.
    {"qwen3-0.6b", 1024, 3072, 28, 16, 8, 151936, 40960, true, "qwen3", 128},
    {"gemma3-1b", 1152, 6912, 26, 4, 1, 262144, 32768, true, "gemma3_text", 256, gemma3_1b},
    {"phi4-mini", 3072, 8192, 32, 24, 8, 200064, 131072, true, "phi3", 128, phi4_mini},
};
}  // namespace

std::vector<std::string> preset_names() {
  std::vector<std::string> v;
  for (auto& s : kShapes) v.push_back(s.name);
  return v;
}

ModelConfig preset_config(const std::string& arch, const std::string& preset) {
  const Shape* s = nullptr;
  for (auto& k : kShapes)
    if (preset == k.name) s = &k;
  if (!s) {
    std::string names;
    for (auto& n : preset_names()) names += (names.empty() ? "" : ", ") + n;
    throw Error("unknown preset '" + preset + "' (known: " + names + ")");
  }
  const Architecture& a = architecture_of_type(s->arch ? s->arch : arch);
  ModelConfig c;
  c.architecture = a.name;
  c.model_type = a.model_type;
  c.hidden_size = s->dim;
  c.intermediate_size = s->hidden;
  c.num_hidden_layers = s->layers;
  c.num_attention_heads = s->heads;
  c.num_key_value_heads = s->kv_heads;
  c.head_dim = s->head_dim ? s->head_dim : s->dim / s->heads;
  c.vocab_size = s->vocab;
  c.max_position_embeddings = s->max_seq;
  c.tie_word_embeddings = s->tied;
  c.rms_norm_eps = 1e-5;
  a.defaults(c);  // the architecture's own options (rope theta, biases, QK-norm, ...)
  if (s->arch) c.rms_norm_eps = 1e-6;
  if (s->finish) s->finish(c);
  return c;
}

}  // namespace forge::models
