// Learning-rate schedules (see schedule.h).
#include "train/schedule.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace forge::train {

double lr_at(const std::string& schedule, double base, int64_t step, int64_t total, int64_t warmup, double min_ratio) {
  if (step < warmup) return base * double(step + 1) / double(warmup);
  if (schedule == "constant") return base;
  const double span = double(std::max<int64_t>(1, total - warmup - 1));
  const double p = std::clamp(double(step - warmup) / span, 0.0, 1.0);
  double f;
  if (schedule == "linear") f = 1.0 - p;
  else if (schedule == "cosine") f = 0.5 * (1.0 + std::cos(M_PI * p));
  else throw Error("unknown schedule '" + schedule + "' (expected constant, linear or cosine)");
  return base * (min_ratio + (1.0 - min_ratio) * f);
}

}  // namespace forge::train
