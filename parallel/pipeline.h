// Pipeline parallelism: the layers are split into stages (one per rank of the pp group) and a
// step's micro-batches flow through them. Activations go forward and their gradients back with
// point-to-point messages; the loss lives on the last stage.
//   GPipe (Huang et al. 2019): every forward, then every backward; activations of all micro-batches live at once.
//   1F1B (PipeDream-Flush, Narayanan et al. 2021): stage s runs pp - s - 1 forwards, then alternates one
//   forward and one backward, then drains; at most pp - s micro-batches are in flight.
// Both give the same gradients; 1F1B needs less memory. With one stage, 1F1B is the plain loop.
#pragma once
#include <functional>
#include <string>

#include "core/tensor.h"
#include "parallel/comm.h"

namespace forge::parallel {

enum class Schedule { OneFOneB, GPipe };
Schedule schedule_from_name(const std::string& name);  // "1f1b" | "gpipe"

// One stage's part of a step.
struct Stage {
  // Micro-batch i on this stage: input is the previous stage's output (undefined on the first
  // stage). Returns the output to send on, or on the last stage the loss to run backward from.
  std::function<Tensor(int64_t i, const Tensor& input)> forward;
  // The shape and dtype of micro-batch i's activation between stages.
  std::function<Shape(int64_t i)> activation_shape;
  DType activation_dtype = DType::F32;
  Device activation_device;  // where activations and their gradients are received
  // Called before micro-batch i's backward, after its gradient has arrived from the next stage
  // (gradient-sync switches, tied weights).
  std::function<void(int64_t i)> before_backward;
};

// Runs n micro-batches through the stages of `pp`, forward and backward (train = false: forward
// only, as for evaluation; call it under NoGradGuard). Every rank of the group calls it with the
// same n. Sends never block; a receive waits with the communicator's deadline.
void run_pipeline(Schedule schedule, int64_t n, Communicator& pp, const Stage& stage, bool train = true);

}  // namespace forge::parallel
