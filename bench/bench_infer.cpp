// `forge bench infer`: prefill (128 tokens, or --prompt) and greedy decode (128 new tokens after
// the prompt) at batch 1 on a random model of a preset shape, tokens/s with the threads used.
#include <omp.h>

#include <chrono>
#include <cstdio>

#include "bench/bench.h"
#include "core/autograd.h"
#include "core/random.h"
#include "infer/generate.h"
#include "kernels/cuda/cuda_backend.h"
#include "models/presets.h"

namespace forge::bench {

int bench_infer(const std::string& preset, const std::string& dtype_name, bool json, int repeats, Device dev,
                int64_t P, int64_t window) {
  models::ModelConfig c = models::preset_config("llama", preset);
  const int64_t N = 128;
  c.max_position_embeddings = std::max<int64_t>(c.max_position_embeddings, P + N + 1);  // room for the run
  if (window > 0) {
    c.sliding_window = window;
    c.layer_types.assign(size_t(c.num_hidden_layers), "sliding_attention");
  }
  const DType dt = dtype_from_name(dtype_name);
  models::CausalLM model(c, dt);
  model.init_weights(0.02, 1234);
  model.to(dev);
  NoGradGuard ng;
  const int threads = omp_get_max_threads();
  Generator g(7);
  std::vector<int64_t> prompt = randint(0, c.vocab_size, {P}, DType::I64, &g).to_vector<int64_t>();
  const std::string shape = preset + " P" + std::to_string(P) + " N" + std::to_string(N) + " B1" +
                            (window > 0 ? " W" + std::to_string(window) : "");

  // Prefill: the whole prompt through the model into a fresh cache, logits of the last token.
  Tensor ids = Tensor::from_vector(prompt, {1, P});
  auto prefill = [&] {
    models::KVCache cache = models::KVCache::create(c, 1, P, dt, dev);
    models::ForwardOptions fo;
    fo.cache = &cache;
    fo.last_only = true;
    model.forward(ids, fo).to(Device::cpu());  // the logits' copy back ends the step (a device sync)
  };
  prefill();  // warm-up
  const double t_prefill = time_median(prefill, repeats, 2.0);
  report({"infer.prefill", shape, dtype_name, dev.str(), "tok/s", threads, double(P) / t_prefill}, json);

  // Decode: greedy, 128 new tokens; the first comes from the prefill and is not counted.
  infer::GenerateOptions opt;
  opt.max_new_tokens = N + 1;
  opt.sampling.temperature = 0;
  double best = 0;
  for (int r = 0; r < repeats; ++r) {
    infer::GenerateResult res = infer::generate(model, prompt, opt);
    best = std::max(best, double(N) / res.decode_seconds);
  }
  report({"infer.decode", shape, dtype_name, dev.str(), "tok/s", threads, best}, json);
  if (dev.is_cuda())
    report({"infer.peak_device_memory", shape, dtype_name, dev.str(), "MiB", threads,
            double(cuda::bytes_peak(dev.index)) / (1 << 20)}, json);
  return 0;
}

}  // namespace forge::bench
