// Which architectures Forge builds, by config.json's `architectures[0]`. Each one lives in a file
// of its own (models/llama.cpp, models/qwen2.cpp, models/qwen3.cpp, ...) holding what differs from
// the shared decoder (models/causal_lm.h): the config fields it reads and the decoder options it
// sets from them, what it writes back, and a random model's defaults. registry.cpp lists them.
// docs/adding-a-model.md walks through adding one.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/config.h"

namespace forge::models {

struct Architecture {
  const char* name;        // config.json's architectures[0], e.g. "Qwen3ForCausalLM"
  const char* model_type;  // its model_type, and init-model's --arch, e.g. "qwen3"
  // Reads the architecture's own fields into c (the common ones are there already) and sets the
  // decoder's options; refuses values it cannot honour, naming the field.
  void (*parse)(const ConfigReader& r, ModelConfig& c);
  // Writes those fields back into config.json (saved models, init-model).
  void (*write)(const ModelConfig& c, nlohmann::json& j);
  // The options of a random model of this architecture (init-model --arch, presets).
  void (*defaults)(ModelConfig& c);
};

// By config.json name; an unknown one throws naming `where` and listing the supported names.
const Architecture& architecture(const std::string& name, const std::string& where);
// By model_type (init-model --arch); an unknown one throws listing them.
const Architecture& architecture_of_type(const std::string& model_type);
std::string architecture_list();  // "LlamaForCausalLM, MistralForCausalLM, ..."
std::string architecture_types();  // "llama, mistral, qwen2, qwen3"

}  // namespace forge::models
