// SmolLM3ForCausalLM: the shared decoder (Llama's biases, Qwen2's sliding-window fields) where some
// layers apply no RoPE: no_rope_layers holds 1 for a layer that rotates q and k and 0 for one that
// does not (by default every no_rope_layer_interval-th, i.e. every fourth).
#include "core/error.h"
#include "models/registry.h"

namespace forge::models {
namespace {
void parse(const ConfigReader& r, ModelConfig& c) {
  read_llama_options(r, c);
  read_qwen_windows(r, c);
  c.skip_rope.clear();
  if (r.has("no_rope_layers")) {
    const nlohmann::json& n = r.j["no_rope_layers"];
    FORGE_CHECK(n.is_array() && int64_t(n.size()) == c.num_hidden_layers, r.path,
                ": 'no_rope_layers' must list one 0 or 1 per layer (", c.num_hidden_layers, "), got ", n.dump());
    for (const auto& x : n) {
      FORGE_CHECK(x == 0 || x == 1, r.path, ": no_rope_layers entries must be 0 or 1, got ", x.dump());
      c.skip_rope.push_back(x == 0);
    }
    return;
  }
  const int64_t interval = r.get_int("no_rope_layer_interval", 4);
  FORGE_CHECK(interval > 0, r.path, ": 'no_rope_layer_interval' must be positive, got ", interval);
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) c.skip_rope.push_back((i + 1) % interval == 0);
}

void write(const ModelConfig& c, nlohmann::json& j) {
  write_llama_options(c, j);
  write_qwen_windows(c, j);
  std::vector<int> rotates;
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) rotates.push_back(c.layer_rotates(i) ? 1 : 0);
  j["no_rope_layers"] = rotates;
}

void defaults(ModelConfig& c) {
  c.rope_theta = 2000000.0;
  c.skip_rope.clear();
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) c.skip_rope.push_back((i + 1) % 4 == 0);
}
}  // namespace

extern const Architecture kSmolLM3{"SmolLM3ForCausalLM", "smollm3", parse, write, defaults};

}  // namespace forge::models
