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
  const char* alias = nullptr;  // another init-model --arch name, e.g. gemma3 for gemma3_text
};

// Llama's silu MLP, attention_bias (q, k, v and o) and mlp_bias (llama.cpp); SmolLM3 shares them.
void read_llama_options(const ConfigReader& r, ModelConfig& c);
void write_llama_options(const ModelConfig& c, nlohmann::json& j);
// Qwen2 and Qwen3's sliding windows (qwen2.cpp): with use_sliding_window, layers from
// max_window_layers on (or those layer_types marks) see the last sliding_window tokens.
void read_qwen_windows(const ConfigReader& r, ModelConfig& c);
void write_qwen_windows(const ModelConfig& c, nlohmann::json& j);

// A multimodal checkpoint whose text model Forge loads, leaving out its vision tower and projector:
// config.json's text_config, completed by transformers' defaults, is text_arch's config, and the
// text weights carry another prefix (Gemma 3 4B-27B: Gemma3ForConditionalGeneration).
struct TextModelOf {
  const char* name;           // config.json's architectures[0], e.g. "Gemma3ForConditionalGeneration"
  const char* text_arch;      // the architecture of text_config, e.g. "Gemma3ForCausalLM"
  const char* text_defaults;  // JSON: transformers' values of the fields text_config may leave out
  // Forge name prefix -> checkpoint prefix; layouts tried in order (transformers moved them).
  std::vector<std::vector<std::pair<std::string, std::string>>> layouts;
  std::vector<std::string> other_parts;  // prefixes of the tensors that are not the text model's
};
const TextModelOf* text_model_of(const std::string& name);  // null for a plain causal LM

// By config.json name; an unknown one throws naming `where` and listing the supported names.
const Architecture& architecture(const std::string& name, const std::string& where);
// By model_type (init-model --arch); an unknown one throws listing them.
const Architecture& architecture_of_type(const std::string& model_type);
std::string architecture_list();  // "LlamaForCausalLM, MistralForCausalLM, ..."
std::string architecture_types();  // "llama, mistral, qwen2, qwen3"

}  // namespace forge::models
