// PEFT-format adapter directories: adapter_config.json + adapter_model.safetensors, with PEFT's
// tensor names and shapes, so PEFT, vLLM and Forge read each other's LoRA adapters.
#pragma once
#include <string>

#include "peft/lora.h"

namespace forge::peft {

// Writes dir/adapter_config.json and dir/adapter_model.safetensors (f32, as trained).
void save_adapter(const LoraModel& lora, const std::string& dir);
// adapter_config.json -> LoraConfig; rejects what Forge cannot apply (DoRA, bias training,
// modules_to_save, fan_in_fan_out) with a message naming the field.
LoraConfig read_adapter_config(const std::string& dir);
// Attaches the adapter in dir to model (F32, BF16 or F16 tensors; per-module ranks from the
// tensor shapes and PEFT's rank_pattern/alpha_pattern). Base parameters are frozen.
LoraModel load_adapter(nn::Module& model, const std::string& dir);

}  // namespace forge::peft
