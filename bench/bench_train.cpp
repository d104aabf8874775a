// `forge bench train`: training steps (forward + cross-entropy + backward + AdamW) on a random
// model of a preset shape, full finetune or LoRA (default r 8, alpha 2r on q, k, v, o; base frozen), at
// batch 8 x 256 tokens as ../shared/PEERS.md measures PyTorch, on the CPU or a CUDA device.
// Prints tokens/s, model FLOP/s and their share of the device's measured GEMM ceiling (MFU), and
// peak memory.
#include <omp.h>

#include <chrono>
#include <cstdio>

#include "bench/bench.h"
#include "core/autograd.h"
#include "core/cpu_allocator.h"
#include "core/random.h"
#include "core/process_memory.h"
#include "core/storage.h"
#include "kernels/cuda/cuda_backend.h"
#include "models/causal_lm.h"
#include "models/presets.h"
#include "peft/lora.h"
#include "peft/nf4.h"
#include "train/optimizer.h"

namespace forge::bench {
namespace {

void sync(Device dev) {
  if (dev.is_cuda()) cuda::synchronize(dev.index);
}

// FLOP/s of one large square GEMM in dt on dev: the ceiling MFU is measured against.
double gemm_ceiling(Device dev, DType dt) {
  const int64_t n = dev.is_cuda() ? 8192 : 1024;
  NoGradGuard ng;
  Tensor a = randn({n, n}).to(dt).to(dev), b = randn({n, n}).to(dt).to(dev);
  matmul(a, b);
  sync(dev);
  const double sec = time_median([&] {
    matmul(a, b);
    sync(dev);
  }, 5, 1.0);
  return 2.0 * double(n) * double(n) * double(n) / sec;
}

// Model FLOPs per trained token (PaLM's count: matmuls plus attention scores, causal mask ignored).
// Full finetune: 6 per matmul weight (forward, input and weight gradients); LoRA: 4 (the frozen
// weights get no gradient). Attention: 12 x layers x seq x hidden either way.
double flops_per_token(const models::ModelConfig& c, int64_t matmul_params, int64_t seq, bool lora) {
  return double(lora ? 4 : 6) * double(matmul_params) +
         12.0 * double(c.num_hidden_layers) * double(seq) * double(c.hidden_size);
}

}  // namespace

int bench_train(const std::string& preset, bool lora, const std::string& dtype_name, int64_t batch, int64_t seq,
                int steps, Device dev, const LoraShape& lora_shape, bool json) {
  models::ModelConfig c = models::preset_config("llama", preset);
  c.max_position_embeddings = std::max(c.max_position_embeddings, seq);
  const DType dt = dtype_from_name(dtype_name);
  auto made = models::CausalLM::unfilled(c, dt);
  models::CausalLM& model = *made;
  model.init_weights(0.02, 1234);
  // Every base weight but the input embedding's is a matmul operand (a tied embedding is the LM head).
  const int64_t matmul_params = model.num_parameters() - (c.tie_word_embeddings ? 0 : c.vocab_size * c.hidden_size);
  train::NamedParams params;
  std::unique_ptr<peft::LoraModel> adapters;
  int64_t nf4_bytes = 0;  // QLoRA's base weights, held outside tensors
  if (lora) {
    peft::LoraConfig lc;
    lc.r = lora_shape.r;
    lc.alpha = 2.0 * double(lora_shape.r);
    lc.target_modules = lora_shape.targets;
    adapters = std::make_unique<peft::LoraModel>(peft::apply_lora(model, lc, 1));
    params = adapters->named_parameters();
    if (lora_shape.qlora) nf4_bytes = peft::quantize_nf4(model, dev).second;
  } else {
    params = model.named_parameters();
  }
  model.to(dev);
  for (auto& [name, p] : params)  // the adapters too, wherever they hang
    if (p.device() != dev) p.set_data(p.detach().to(dev));
  train::AdamW opt(params, {.lr = 1e-4});
  Generator g(7);
  Tensor ids = randint(0, c.vocab_size, {batch, seq}, DType::I64, &g).to(dev);
  Tensor labels = randint(0, c.vocab_size, {batch * seq}, DType::I64, &g).to(dev);
  auto step = [&] {
    Tensor logits = model.forward(ids);
    Tensor loss = cross_entropy(logits.view({-1, c.vocab_size}), labels);
    loss.backward();
    opt.step();
    opt.zero_grad();
  };
  // Blocks freed while the model was made (QLoRA's replaced weights) would stay resident in the
  // allocator's keep; a model loaded by forge train never has them.
  cpu_alloc::empty_cache();
  step();  // warm-up: optimiser state, GEMM plans
  sync(dev);
  reset_cpu_bytes_peak();
  reset_peak_rss();  // peak RSS of the timed steps, without the model's construction
  const auto t0 = std::chrono::steady_clock::now();
  for (int s = 0; s < steps; ++s) step();
  sync(dev);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string shape = preset + " B" + std::to_string(batch) + " T" + std::to_string(seq);
  const std::string name = lora_shape.qlora ? "train.qlora" : lora ? "train.lora" : "train.full";
  const int threads = omp_get_max_threads();
  const std::string where = dev.str();
  const double tok_s = double(batch * seq * steps) / secs;
  const double model_flops = tok_s * flops_per_token(c, matmul_params, seq, lora);
  const double ceiling = gemm_ceiling(dev, dt);
  report({name, shape, dtype_name, where, "tok/s", threads, tok_s}, json);
  const double unit = dev.is_cuda() ? 1e12 : 1e9;  // TFLOP/s on a GPU, GFLOP/s on the CPU
  const char* unit_name = dev.is_cuda() ? "TFLOP/s" : "GFLOP/s";
  report({name + ".model_flops", shape, dtype_name, where, unit_name, threads, model_flops / unit}, json);
  report({name + ".mfu", shape, dtype_name, where, "% of GEMM", threads, 100.0 * model_flops / ceiling}, json);
  report({"gemm.ceiling", dev.is_cuda() ? "8192^3" : "1024^3", dtype_name, where, unit_name, threads, ceiling / unit},
         json);
  if (dev.is_cuda())
    report({name + ".peak_device_memory", shape, dtype_name, where, "MiB", threads,
            double(cuda::bytes_peak(dev.index)) / (1 << 20)}, json);
  else
    report({name + ".peak_tensor_memory", shape, dtype_name, where, "MiB", threads, double(cpu_bytes_peak()) / (1 << 20)},
           json);
  if (nf4_bytes) report({name + ".nf4_weights", shape, dtype_name, where, "MiB", threads, double(nf4_bytes) / (1 << 20)}, json);
  report({name + ".peak_rss", shape, dtype_name, where, "MiB", threads, double(peak_rss_bytes()) / (1 << 20)}, json);
  return 0;
}

}  // namespace forge::bench
