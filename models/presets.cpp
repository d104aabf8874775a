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
};
const Shape kShapes[] = {
    {"tiny", 64, 172, 2, 4, 2, 512, 256, true},
    {"stories15M", 288, 768, 6, 6, 6, 32000, 256, true},
    {"gqa-60M", 512, 1536, 8, 8, 2, 32000, 512, false},
    {"stories110M", 768, 2048, 12, 12, 12, 32000, 1024, true},
    {"llama-1b", 2048, 8192, 16, 32, 8, 128256, 2048, true},
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
  const Architecture& a = architecture_of_type(arch);
  ModelConfig c;
  c.architecture = a.name;
  c.model_type = a.model_type;
  c.hidden_size = s->dim;
  c.intermediate_size = s->hidden;
  c.num_hidden_layers = s->layers;
  c.num_attention_heads = s->heads;
  c.num_key_value_heads = s->kv_heads;
  c.head_dim = s->dim / s->heads;
  c.vocab_size = s->vocab;
  c.max_position_embeddings = s->max_seq;
  c.tie_word_embeddings = s->tied;
  c.rms_norm_eps = 1e-5;
  a.defaults(c);  // the architecture's own options (rope theta, biases, QK-norm, ...)
  return c;
}

}  // namespace forge::models
