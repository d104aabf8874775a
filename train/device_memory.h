// Whether a training run fits on its GPU, checked before any weight is loaded: the weights,
// gradients and optimiser state the recipe needs on each rank (activations and LoRA adapters
// come on top) against the device's free memory. A run that cannot fit stops with the sizes
// instead of failing part-way through loading.
#pragma once
#include <string>

#include "core/device.h"
#include "models/config.h"
#include "train/recipe.h"

namespace forge::train {

struct DeviceMemoryNeed {
  double weights = 0, gradients = 0, optimizer = 0;  // bytes on one rank
  double total() const { return weights + gradients + optimizer; }
};

DeviceMemoryNeed training_memory_need(const Recipe& r, const models::ModelConfig& c);
// Throws naming the sizes when the need exceeds dev's free memory (a CPU always passes).
void check_training_fits(const Recipe& r, const models::ModelConfig& c, Device dev);

}  // namespace forge::train
