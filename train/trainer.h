// The finetuning loop behind `forge train`: data (cached), model, LoRA or full finetune, exact
// loss normalisation over gradient accumulation, clipping, schedule, eval, metrics, checkpoints
// with resume, and the adapter or full model at the end. Written against the dp x tp x pp mesh
// of the recipe (a single process is the 1 x 1 x 1 mesh).
#pragma once
#include <cstdint>
#include <string>

#include "train/recipe.h"

namespace forge::train {

struct TrainSummary {
  int64_t steps = 0;        // optimiser steps of the whole run
  int64_t start_step = 0;   // > 0 when resumed from a checkpoint
  double first_loss = 0, last_loss = 0, eval_loss = 0;  // eval_loss NaN without eval data
  double tokens_per_s = 0;  // non-padding tokens per second over this process's steps
  // Steps after the first (set-up and warm-up excluded), for benchmarks: tokens per second and
  // this rank's peak CPU tensor memory while they ran (0 when fewer than two steps ran).
  double steady_tokens_per_s = 0;
  double steady_peak_bytes = 0;
  std::string adapter_dir;  // output.dir/adapter (LoRA) or ""
  std::string model_dir;    // output.dir/model (full finetune) or ""
  // A stop request (train/stop_request.h) ended the run early: the signal, and the step whose
  // checkpoint was written. No adapter or model is written then.
  int stopped_by = 0;
  int64_t stopped_at = 0;
};

// Runs a validated recipe. Writes to r.output.dir: recipe.yaml, metrics.jsonl, loss_curve.svg,
// data/ (token caches), checkpoints/, and adapter/ or model/.
TrainSummary run_training(const Recipe& r);

}  // namespace forge::train
