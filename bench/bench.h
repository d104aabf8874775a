// Benchmarks behind `forge bench`: each prints a human table, or one JSON object per
// measurement with --json (name, shape, dtype, threads, value, unit).
#pragma once
#include <functional>
#include <string>

#include "core/device.h"
#include <vector>

namespace forge::bench {

struct Measurement {
  std::string name, shape, dtype, backend, unit;
  int threads = 1;
  double value = 0;
};

// Prints m as a table row or a JSON line.
void report(const Measurement& m, bool json);
// Median seconds of fn over repeated runs (at least `min_runs`, about `budget_s` in total).
double time_median(const std::function<void()>& fn, int min_runs = 3, double budget_s = 1.0);

// GEMM GFLOP/s (every CPU backend in f32, oneDNN in bf16) and attention fwd+bwd milliseconds.
int bench_ops(bool json, bool quick);
// Prefill 128 tokens and greedy-decode 128 tokens at batch 1 on a random model of `preset`.
// prompt: its tokens (decode runs after them); window > 0 gives every layer that sliding window
// (Mistral-style), to show decode cost staying flat past it.
int bench_infer(const std::string& preset, const std::string& dtype, bool json, int repeats, Device device,
                int64_t prompt = 128, int64_t window = 0);
// Streamed completions through the HTTP server at concurrency 1, 8, 32: tokens/s, TTFT, ITL.
int bench_serve(const std::string& preset, const std::string& dtype, const std::string& kv_dtype, bool json,
                int rounds, bool http, Device device);
// Guided JSON's token mask over the tokenizer of model_dir: ms per sequence and step in the
// states a document goes through (JSON mode and a schema), and the vocabulary index's build time.
int bench_json(const std::string& model_dir, bool json, bool quick);
// LoRA adapters of bench train: rank (alpha = 2 x rank) and target modules (or "all-linear");
// qlora: the base's linear weights (all but the output layer) in NF4, as peft.method qlora.
struct LoraShape {
  int64_t r = 8;
  std::vector<std::string> targets = {"q_proj", "k_proj", "v_proj", "o_proj"};
  bool qlora = false;
};
// Training steps (forward + loss + backward + AdamW), full or LoRA, on a device:
// tokens/s, model FLOP/s, MFU against a measured GEMM ceiling, peak memory.
int bench_train(const std::string& preset, bool lora, const std::string& dtype, int64_t batch, int64_t seq, int steps,
                Device device, const LoraShape& lora_shape, bool json);
// The same through the real trainer under a dp x tp x pp mesh ("dp2", "tp2", "pp2", "dp2xtp2",
// or "1"); run under mpirun. Tokens/s and every rank's peak tensor memory, printed by rank 0.
int bench_train_parallel(const std::string& preset, bool lora, const std::string& dtype, int64_t batch, int64_t seq,
                         int steps, const std::string& mesh, int64_t micro_batches, int64_t zero, bool json);

// GRPO steps through the real trainer on a random model: sampling and training tokens/s apart,
// the step's time and its share spent sampling, peak memory.
int bench_grpo(const std::string& preset, bool lora, const std::string& dtype, int64_t prompts, int64_t generations,
               int64_t completion, int64_t micro_batches, int steps, Device device, bool json);

}  // namespace forge::bench
