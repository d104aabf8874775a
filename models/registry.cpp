// The architectures Forge builds (see registry.h). Adding one: its file, and one line here.
#include "models/registry.h"

#include "core/error.h"

namespace forge::models {

extern const Architecture kLlama, kMistral, kQwen2, kQwen3, kGemma, kGemma2, kGemma3, kSmolLM3, kPhi3;
extern const TextModelOf kGemma3Multimodal;

namespace {
const Architecture* const kAll[] = {&kLlama,  &kMistral, &kQwen2,   &kQwen3, &kGemma,
                                    &kGemma2, &kGemma3,  &kSmolLM3, &kPhi3};
}  // namespace

std::string architecture_list() {
  std::string s;
  for (const Architecture* a : kAll) s += (s.empty() ? "" : ", ") + std::string(a->name);
  return s + ", " + kGemma3Multimodal.name + " (its text model)";
}

const TextModelOf* text_model_of(const std::string& name) {
  return name == kGemma3Multimodal.name ? &kGemma3Multimodal : nullptr;
}

std::string architecture_types() {
  std::string s;
  for (const Architecture* a : kAll) s += (s.empty() ? "" : ", ") + std::string(a->alias ? a->alias : a->model_type);
  return s;
}

const Architecture& architecture(const std::string& name, const std::string& where) {
  for (const Architecture* a : kAll)
    if (name == a->name) return *a;
  throw Error(where + ": architecture '" + name + "' is not supported (supported: " + architecture_list() + ")");
}

const Architecture& architecture_of_type(const std::string& model_type) {
  for (const Architecture* a : kAll)
    if (model_type == a->model_type || (a->alias && model_type == a->alias)) return *a;
  throw Error("unknown architecture '" + model_type + "' (known: " + architecture_types() + ")");
}

}  // namespace forge::models
