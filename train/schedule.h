// Learning-rate schedules: linear warmup, then constant, linear or cosine decay to a floor.
#pragma once
#include <cstdint>
#include <string>

namespace forge::train {

// step: 0-based optimiser step. Warmup gives base * (step + 1) / warmup for step < warmup (so
// the first step already moves); then progress p in [0, 1] over the remaining steps decays to
// base * min_ratio: linear 1 - p, cosine (1 + cos(pi p)) / 2.
double lr_at(const std::string& schedule, double base, int64_t step, int64_t total, int64_t warmup, double min_ratio);

}  // namespace forge::train
