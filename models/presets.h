// Named model shapes for `forge init-model` and `forge bench` (shapes from ../shared/PEERS.md).
#pragma once
#include <string>
#include <vector>

#include "models/config.h"

namespace forge::models {

// arch: a model_type (registry.h). preset: tiny | stories15M | gqa-60M | stories110M | llama-1b
// (shapes for any arch), or a released model's shape with its own architecture: qwen3-0.6b,
// gemma3-1b, phi4-mini.
ModelConfig preset_config(const std::string& arch, const std::string& preset);
std::vector<std::string> preset_names();

}  // namespace forge::models
