// `forge bench train`: training steps (forward + cross-entropy + backward + AdamW) on a random
// model of a preset shape, full finetune or LoRA (r 8, alpha 16 on q, k, v, o; base frozen), at
// batch 8 x 256 tokens as ../shared/PEERS.md measures PyTorch. Prints tokens/s and peak memory.
#include <omp.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>

#include "bench/bench.h"
#include "core/autograd.h"
#include "core/random.h"
#include "core/storage.h"
#include "models/llama.h"
#include "models/presets.h"
#include "peft/lora.h"
#include "train/optimizer.h"

namespace forge::bench {

int bench_train(const std::string& preset, bool lora, const std::string& dtype_name, int64_t batch, int64_t seq,
                int steps, bool json) {
  models::ModelConfig c = models::preset_config("llama", preset);
  c.max_position_embeddings = std::max(c.max_position_embeddings, seq);
  const DType dt = dtype_from_name(dtype_name);
  models::CausalLM model(c, dt);
  model.init_weights(0.02, 1234);
  train::NamedParams params;
  std::unique_ptr<peft::LoraModel> adapters;
  if (lora) {
    peft::LoraConfig lc;
    lc.r = 8;
    lc.alpha = 16;
    lc.target_modules = {"q_proj", "k_proj", "v_proj", "o_proj"};
    adapters = std::make_unique<peft::LoraModel>(peft::apply_lora(model, lc, 1));
    params = adapters->named_parameters();
  } else {
    params = model.named_parameters();
  }
  train::AdamW opt(params, {.lr = 1e-4});
  Generator g(7);
  Tensor ids = randint(0, c.vocab_size, {batch, seq}, DType::I64, &g);
  Tensor labels = randint(0, c.vocab_size, {batch * seq}, DType::I64, &g);
  auto step = [&] {
    Tensor logits = model.forward(ids);
    Tensor loss = cross_entropy(logits.view({-1, c.vocab_size}), labels);
    loss.backward();
    opt.step();
    opt.zero_grad();
  };
  step();  // warm-up: optimiser state, GEMM plans
  reset_cpu_bytes_peak();
  const auto t0 = std::chrono::steady_clock::now();
  for (int s = 0; s < steps; ++s) step();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  const std::string shape = preset + " B" + std::to_string(batch) + " T" + std::to_string(seq);
  const std::string name = lora ? "train.lora" : "train.full";
  const int threads = omp_get_max_threads();
  report({name, shape, dtype_name, "cpu", "tok/s", threads, double(batch * seq * steps) / secs}, json);
  report({name + ".peak_tensor_memory", shape, dtype_name, "cpu", "MiB", threads, double(cpu_bytes_peak()) / (1 << 20)}, json);
  report({name + ".peak_rss", shape, dtype_name, "cpu", "MiB", threads, double(ru.ru_maxrss) / 1024.0}, json);
  return 0;
}

}  // namespace forge::bench
