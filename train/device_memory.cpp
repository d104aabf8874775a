// The device memory a training run needs before activations (see device_memory.h).
#include "train/device_memory.h"

#include <cstdio>

#include "core/error.h"
#include "kernels/cuda/cuda_backend.h"

namespace forge::train {
namespace {
std::string gib(double bytes) {  // MiB below a GiB, so small models read as something
  char s[32];
  if (bytes < double(1 << 30)) std::snprintf(s, sizeof s, "%.1f MiB", bytes / double(1 << 20));
  else std::snprintf(s, sizeof s, "%.2f GiB", bytes / double(1 << 30));
  return s;
}
}  // namespace

DeviceMemoryNeed training_memory_need(const Recipe& r, const models::ModelConfig& c) {
  const double P = double(c.num_parameters());
  const double es = dtype_from_name(r.model.dtype) == DType::F32 ? 4.0 : 2.0;
  const double embed = double(c.vocab_size * c.hidden_size), head = c.tie_word_embeddings ? 0.0 : embed;
  const double split = double(r.parallel.tp * r.parallel.pp), dp = double(r.parallel.dp);
  DeviceMemoryNeed n;
  // QLoRA: the linear weights at 4.13 bits (NF4 codes and double-quantised scales), the rest as is.
  n.weights = r.peft.method == "qlora" ? (P - embed - head) * 4.13 / 8 + (embed + head) * es : P * es;
  n.weights /= split;  // ZeRO-3 too: each rank's weights pass whole through its device before slicing
  if (r.peft.method == "none") {
    const double moments = r.optim.name == "adamw" ? 8.0 : (r.optim.momentum > 0 ? 4.0 : 0.0);
    const double masters = es < 4 ? 4.0 : 0.0;
    n.gradients = P * es / (split * (r.parallel.zero >= 2 ? dp : 1.0));
    n.optimizer = P * (moments + masters) / (split * (r.parallel.zero >= 1 ? dp : 1.0));
  }
  return n;
}

void check_training_fits(const Recipe& r, const models::ModelConfig& c, Device dev) {
  if (!dev.is_cuda()) return;
  size_t free_b = 0, total_b = 0;
  cuda::memory_info(dev.index, &free_b, &total_b);
  const DeviceMemoryNeed n = training_memory_need(r, c);
  FORGE_CHECK(n.total() <= double(free_b), r.model.path, ": the model needs at least ", gib(n.total()), " on ",
              dev.str(), " before activations (weights ", gib(n.weights), ", gradients ", gib(n.gradients),
              ", optimiser state ", gib(n.optimizer), "), and ", dev.str(), " has ", gib(double(free_b)),
              " free of ", gib(double(total_b)),
              ". Try peft.method lora or qlora, model.dtype bf16, parallel.zero, or more GPUs (parallel.dp/tp/pp)");
}

}  // namespace forge::train
