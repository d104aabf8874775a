// Named model shapes for `forge init-model` and `forge bench` (shapes from ../shared/PEERS.md).
#pragma once
#include <string>
#include <vector>

#include "models/config.h"

namespace forge::models {

// arch: llama | mistral | qwen2. preset: tiny | stories15M | gqa-60M | stories110M | llama-1b.
ModelConfig preset_config(const std::string& arch, const std::string& preset);
std::vector<std::string> preset_names();

}  // namespace forge::models
