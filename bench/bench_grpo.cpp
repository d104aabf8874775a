// `forge bench grpo`: GRPO steps through the real trainer (train/grpo.h) on a random model of the
// preset's shape: each step samples --generations completions of --prompts prompts (--completion
// tokens at most) with the engine over the live weights, then trains on them in --micro-batches.
// Prints, over the steps after the first: sampling tokens/s (completion tokens per second of
// sampling), training tokens/s (prompt + completion tokens per second of the rest of the step),
// the whole step's time and its share spent sampling, and peak tensor memory and RSS.
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bench/bench.h"
#include "core/file_util.h"
#include "core/process_memory.h"
#include "train/init_model.h"
#include "train/trainer.h"

namespace forge::bench {

int bench_grpo(const std::string& preset, bool lora, const std::string& dtype, int64_t prompts, int64_t generations,
               int64_t completion, int64_t micro_batches, int steps, Device device, bool json) {
  const std::string dir = "/tmp/forge-bench-grpo/" + preset + "-" + dtype;
  if (!file_exists(dir + "/model/config.json")) {
    train::InitModelOptions io;
    io.preset = preset;
    io.dtype = dtype;
    train::init_random_model(dir + "/model", io);
  }
  std::string text;
  for (int64_t i = 0; i < prompts; ++i) {  // about 32 tokens each
    std::string q = "Question ";
    q += std::to_string(i);
    q += ": write a short story about a cat, a dog and a bird who meet at the river on a sunny day.";
    text += nlohmann::json{{"prompt", q}}.dump();
    text += "\n";
  }
  write_file_atomic(dir + "/prompts.jsonl", text);

  train::Recipe r;
  r.model.path = dir + "/model";
  r.model.dtype = dtype;
  r.model.device = device.is_cpu() ? "cpu" : device.str();
  r.data.path = dir + "/prompts.jsonl";
  r.peft.method = lora ? "lora" : "none";
  r.peft.target_modules = {"all-linear"};
  r.optim.lr = 1e-5;
  r.train.method = "grpo";
  r.train.batch_size = prompts;
  r.train.grad_accum = micro_batches;
  r.train.max_steps = steps + 1;  // the first step (warm-up) is not counted
  r.grpo.num_generations = generations;
  r.grpo.max_completion_length = completion;
  r.grpo.max_prompt_len = 64;
  r.grpo.rewards = R"([{"type": "regex", "pattern": "[aeiou]{2}"}])";
  r.grpo.samples_every = 0;
  r.logging.progress = false;
  r.checkpoint.resume = "never";
  r.output.dir = dir + std::string("/run-") + (lora ? "lora" : "full");
  const train::TrainSummary s = train::run_training(r);

  double gen_s = 0, gen_tokens = 0, step_s = 0, train_tokens = 0, prev = 0;
  std::ifstream in(r.output.dir + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    if (!j.contains("gen_s")) continue;
    const double elapsed = j.at("elapsed_s").get<double>(), dt = elapsed - prev;
    prev = elapsed;
    if (j.at("step").get<int64_t>() == 1) continue;
    const double g = j.at("gen_s").get<double>();
    gen_s += g;
    gen_tokens += j.at("completions/mean_length").get<double>() * double(prompts * generations);
    step_s += dt;
    train_tokens += j.at("tokens").get<double>();
  }
  const std::string shape = preset + " " + std::to_string(prompts) + "x" + std::to_string(generations) + " T" +
                            std::to_string(completion) + " mb" + std::to_string(micro_batches) +
                            (lora ? " lora all-linear" : " full");
  const std::string backend = device.is_cpu() ? "cpu" : device.str();
  const int threads = omp_get_max_threads();
  report({"grpo.sample", shape, dtype, backend, "tok/s", threads, gen_tokens / gen_s}, json);
  report({"grpo.train", shape, dtype, backend, "tok/s", threads, train_tokens / std::max(step_s - gen_s, 1e-9)}, json);
  report({"grpo.step", shape, dtype, backend, "s", threads, step_s / steps}, json);
  report({"grpo.sample_share", shape, dtype, backend, "%", threads, 100 * gen_s / step_s}, json);
  report({"grpo.peak_tensor_memory", shape, dtype, backend, "MiB", threads, s.steady_peak_bytes / double(1 << 20)}, json);
  report({"grpo.peak_rss", shape, dtype, backend, "MiB", threads, double(peak_rss_bytes()) / (1 << 20)}, json);
  return 0;
}

}  // namespace forge::bench
