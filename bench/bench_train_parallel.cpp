// `forge bench train --parallel dp2|tp2|pp2|...`: the real trainer (train/trainer.h) on a random
// model of the preset's shape and generated text, under the mesh given (launch it with
// `mpirun -np N`; `--parallel 1` is the single-process run of the same path). The global batch is
// the same for every mesh (--batch rows of --seq tokens, packed), cut into --micro-batches
// (default 1, or 4 with pp > 1 so the pipeline has work in flight). Prints tokens/s over the steps after the
// first, and each rank's peak CPU tensor memory during them.
#include <omp.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>

#include "bench/bench.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/process_memory.h"
#include "core/random.h"
#include "parallel/comm.h"
#include "train/init_model.h"
#include "train/trainer.h"

namespace forge::bench {
namespace {
// "dp2xtp2" -> {dp, tp, pp}; "1" -> one process.
std::array<int64_t, 3> parse_mesh(const std::string& spec) {
  std::array<int64_t, 3> m{1, 1, 1};
  if (spec == "1") return m;
  std::regex part("(dp|tp|pp)([0-9]+)");
  std::string rest = spec;
  for (std::smatch mt; std::regex_search(rest, mt, part); rest = mt.suffix()) {
    const int64_t v = std::stoll(mt[2]);
    m[mt[1] == "dp" ? 0 : mt[1] == "tp" ? 1 : 2] = v;
  }
  FORGE_CHECK(std::regex_match(spec, std::regex("((dp|tp|pp)[0-9]+)(x(dp|tp|pp)[0-9]+)*")),
              "--parallel: '", spec, "' is not a mesh like dp2, tp2, pp2 or dp2xtp2 (or 1)");
  return m;
}

// Plain words in a seeded order: enough text for the steps (byte-level tokens, about one per byte).
void write_text(const std::string& path, int64_t bytes) {
  const char* words[] = {"the", "model", "learns", "small", "steps", "of", "text", "from", "random", "words",
                         "and", "every", "rank", "holds", "a", "part", "pipeline", "tensor", "data", "parallel"};
  Generator g(5);
  Tensor idx = randint(0, 20, {bytes / 4}, DType::I64, &g);
  const auto v = idx.to_vector<int64_t>();
  std::string out, line;
  for (size_t i = 0; i < v.size(); ++i) {
    line += std::string(line.empty() ? "" : " ") + words[v[i]];
    if (line.size() > 400 || i + 1 == v.size()) {
      out += "{\"text\": \"" + line + "\"}\n";
      line.clear();
    }
  }
  write_file_atomic(path, out);
}
}  // namespace

int bench_train_parallel(const std::string& preset, bool lora, const std::string& dtype, int64_t batch, int64_t seq,
                         int steps, const std::string& spec, int64_t micro_batches, int64_t zero, bool json) {
  const auto [dp, tp, pp] = parse_mesh(spec);
  parallel::Communicator& world = parallel::world();
  const int64_t accum = micro_batches > 0 ? micro_batches : pp > 1 ? 4 : 1;
  FORGE_CHECK(batch % (dp * accum) == 0, "--batch ", batch, " must divide by dp x micro-batches = ", dp * accum);
  const std::string dir = "/tmp/forge-bench-train/" + preset + "-" + dtype;
  if (world.rank() == 0) {
    if (!file_exists(dir + "/model/config.json")) {
      train::InitModelOptions io;
      io.preset = preset;
      io.dtype = dtype;
      train::init_random_model(dir + "/model", io);
    }
    const int64_t bytes = 6 * batch * seq * (steps + 2);
    if (!file_exists(dir + "/text.jsonl") || std::filesystem::file_size(dir + "/text.jsonl") < size_t(bytes))
      write_text(dir + "/text.jsonl", bytes);
  }
  world.barrier();

  train::Recipe r;
  r.model.path = dir + "/model";
  r.model.dtype = dtype;
  r.data.path = dir + "/text.jsonl";
  r.data.format = "text";
  r.data.max_seq_len = seq;
  r.peft.method = lora ? "lora" : "none";
  r.peft.target_modules = {"q_proj", "k_proj", "v_proj", "o_proj"};
  r.optim.lr = 1e-4;
  r.train.max_steps = steps + 1;  // the first step (warm-up) is not counted
  r.train.batch_size = batch / dp / accum;
  r.train.grad_accum = accum;
  r.logging.progress = false;
  r.checkpoint.resume = "never";
  r.parallel.dp = dp;
  r.parallel.tp = tp;
  r.parallel.pp = pp;
  r.parallel.zero = zero;
  r.output.dir = dir + "/run-" + spec + (lora ? "-lora" : "-full");
  const train::TrainSummary s = train::run_training(r);

  // Every rank's peaks, in rank order, to rank 0: tensor memory during the steady steps (weights
  // memory-mapped from the checkpoint are not tensor allocations: see peak RSS), and peak RSS.
  const size_t n = size_t(world.size());
  std::vector<double> peaks(2 * n, 0.0);
  peaks[size_t(world.rank())] = s.steady_peak_bytes / double(1 << 20);
  peaks[n + size_t(world.rank())] = double(peak_rss_bytes()) / (1 << 20);
  peaks = world.sum(peaks);
  if (world.rank() != 0) return 0;
  const std::string shape = preset + " B" + std::to_string(batch) + " T" + std::to_string(seq) + " " +
                            (spec == "1" ? "one process" : spec) + (accum > 1 ? " mb" + std::to_string(accum) : "") +
                            (zero > 0 ? " zero" + std::to_string(zero) : "");
  const std::string name = lora ? "train.lora" : "train.full";
  const int threads = omp_get_max_threads();
  report({name, shape, dtype, "cpu", "tok/s", threads, s.steady_tokens_per_s}, json);
  for (size_t i = 0; i < n; ++i) {
    report({name + ".peak_tensor_memory.rank" + std::to_string(i), shape, dtype, "cpu", "MiB", threads, peaks[i]}, json);
    report({name + ".peak_rss.rank" + std::to_string(i), shape, dtype, "cpu", "MiB", threads, peaks[n + i]}, json);
  }
  return 0;
}

}  // namespace forge::bench
