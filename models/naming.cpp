// Weight-name conventions (see naming.h).
#include "models/naming.h"

namespace forge::models {
namespace {
const std::string kLayers = "model.layers.";
bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }
}  // namespace

std::string strip_peft_prefix(const std::string& name) {
  return starts_with(name, kPeftPrefix) ? name.substr(kPeftPrefix.size()) : name;
}

int layer_of(const std::string& full_name) {
  const std::string name = strip_peft_prefix(full_name);
  return starts_with(name, kLayers) ? int(std::stoll(name.substr(kLayers.size()))) : -1;
}

bool is_embedding(const std::string& name) { return starts_with(strip_peft_prefix(name), "model.embed_tokens."); }

bool is_final_norm_or_head(const std::string& full_name) {
  const std::string name = strip_peft_prefix(full_name);
  return starts_with(name, "model.norm.") || starts_with(name, "lm_head.");
}

}  // namespace forge::models
