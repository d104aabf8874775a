// The parts of a training run (see setup.h).
#include "train/setup.h"

#include <cstdio>
#include <filesystem>

#include "core/autograd.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/process_memory.h"
#include "kernels/cuda/cuda_backend.h"
#include "models/naming.h"
#include "models/pretrained.h"
#include "peft/nf4.h"
#include "train/device_memory.h"
#include "train/init_model.h"

namespace forge::train {
namespace fs = std::filesystem;

Tensor rng_state(const Generator& g) {
  return Tensor::from_vector(std::vector<int64_t>{int64_t(g.seed), int64_t(g.offset)}, {2});
}
void set_rng_state(Generator& g, const Tensor& t) {
  auto v = t.to_vector<int64_t>();
  g.seed = uint64_t(v.at(0));
  g.offset = uint64_t(v.at(1));
}

std::unique_ptr<Optimizer> make_optimizer(const Recipe& r, NamedParams params) {
  if (r.optim.name == "sgd")
    return std::make_unique<SGD>(std::move(params), SGDOptions{r.optim.lr, r.optim.momentum, r.optim.weight_decay});
  return std::make_unique<AdamW>(std::move(params),
                                 AdamWOptions{r.optim.lr, r.optim.beta1, r.optim.beta2, r.optim.eps, r.optim.weight_decay});
}

void prepare_output(const Recipe& r, parallel::Communicator& world, Device dev) {
  const bool lead = world.rank() == 0;
  if (lead && !r.model.init.empty() && !file_exists(r.model.path + "/config.json")) {
    InitModelOptions io;
    io.preset = r.model.init;
    io.seed = uint64_t(r.train.seed);
    init_random_model(r.model.path, io);
  }
  world.barrier();
  check_training_fits(r, models::load_config(r.model.path), dev);  // before anything is written
  if (lead) {
    fs::create_directories(r.output.dir);
    write_file_atomic(r.output.dir + "/recipe.yaml", recipe_to_yaml(r));
  }
  world.barrier();
}

Trainee load_trainee(const Recipe& r, const parallel::Mesh& mesh, Device dev, const std::string& layout) {
  const bool lead = mesh.world().rank() == 0;
  Trainee t;
  std::shared_ptr<models::CausalLM>& model = t.model;
  std::unique_ptr<peft::LoraModel>& lora = t.lora;
  NamedParams& trainable = t.trainable;
  const DType dtype = dtype_from_name(r.model.dtype);
  // Weights go straight to the device, one at a time, except where they are first quantised (QLoRA,
  // from the memory-mapped file) or split (tp, pp: each rank then moves only its part, so no GPU
  // ever holds the whole model): those are loaded memory-mapped on the host and moved afterwards.
  const bool qlora = r.peft.method == "qlora";
  const bool via_host = qlora || r.parallel.tp > 1 || r.parallel.pp > 1;
  t.model = models::load_model(r.model.path, dtype, via_host ? Device::cpu() : dev);
  // ZeRO-3 frees each layer's weights after its forward and gathers them again for a recompute.
  model->checkpoint_layers = r.train.activation_checkpointing || (r.parallel.zero == 3 && r.parallel.dp > 1);
  model->train(true);

  const int64_t n_params = model->num_parameters();  // before QLoRA takes the linear weights out
  // Trainable parameters: the adapters (LoRA) or every weight (full finetune).
  if (r.peft.method == "lora" || r.peft.method == "qlora") {
    peft::LoraConfig lc;
    lc.r = r.peft.r;
    lc.alpha = r.peft.alpha;
    lc.dropout = r.peft.dropout;
    lc.use_rslora = r.peft.use_rslora;
    lc.target_modules = r.peft.target_modules;
    lc.target_regex = r.peft.target_regex;
    lc.base_model_name_or_path = fs::absolute(r.model.path).lexically_normal().string();
    lora = std::make_unique<peft::LoraModel>(peft::apply_lora(*model, lc, uint64_t(r.train.seed)));
    trainable = lora->named_parameters();
    if (qlora) {  // after the adapters are sized from the full weights
      const auto [before, after] = peft::quantize_nf4(*model, dev);
      if (lead)
        std::fprintf(stderr, "forge train: QLoRA: linear weights quantised to NF4, %.1f MiB -> %.1f MiB\n",
                     double(before) / (1 << 20), double(after) / (1 << 20));
    }
  } else {
    for (auto& [n, p] : model->named_parameters()) {
      p.requires_grad_(true);
      trainable.emplace_back(n, p);
    }
  }
  int64_t n_trainable = 0;
  for (auto& [n, p] : trainable) n_trainable += p.numel();
  // This rank's part: its tensor-parallel shard of its pipeline stage's layers (all of it with
  // tp = pp = 1). Trainable below means trained on this rank.
  t.mp = std::make_unique<parallel::ModelParallel>(mesh, *model, lora.get());
  parallel::ModelParallel& mp = *t.mp;
  {
    NoGradGuard ng;
    if (via_host) model->to(dev);  // this rank's part only: the rest was let go above
    if (lora)
      for (auto& [n, p] : lora->named_parameters())  // the adapters live beside their base weights
        if (p.device() != dev) p.set_data(p.detach().to(dev));
  }
  trainable = mp.trained_here(trainable);
  for (auto& [n, p] : trainable) {
    t.tensors.push_back(p);
    t.norm_weights.push_back(mp.norm_weight(n));
  }
  if (lead)
    std::fprintf(stderr, "forge train: %s, %.2fM parameters, %s: %.3fM trainable (%.2f%%), %s on %s, %s\n",
                 r.model.path.c_str(), double(n_params) / 1e6, lora ? "LoRA" : "full finetune",
                 double(n_trainable) / 1e6, 100.0 * double(n_trainable) / double(n_params),
                 r.model.dtype.c_str(), dev.str().c_str(), mesh.world().size() > 1 ? layout.c_str() : "one process");

  return t;
}

Optimisation make_optimisation(const Recipe& r, const parallel::Mesh& mesh, Trainee& t) {
  parallel::Communicator& dp = mesh.dp();
  const NamedParams& trainable = t.trainable;
  const std::vector<Tensor>& trainable_tensors = t.tensors;
  const std::vector<double>& norm_weights = t.norm_weights;
  Optimisation o;
  std::unique_ptr<parallel::GradSync>& sync = o.sync;
  std::unique_ptr<Optimizer>& opt = o.opt;
  std::unique_ptr<ZeroOptimizer>& zero = o.zero;
  std::unique_ptr<parallel::ParamShards>& shards = o.shards;
  if (dp.size() > 1) {
    // Every rank starts from rank 0's weights (they are equal already; this makes sure of it).
    NoGradGuard ng;
    for (auto& [n, p] : trainable) {
      Tensor t = p.dtype() == DType::F32 ? p : p.to(DType::F32);
      dp.broadcast(t, 0);
      if (!t.same(p)) p.copy_(t);
    }
  }
  if (dp.size() > 1)
    sync = std::make_unique<parallel::GradSync>(
        dp, trainable_tensors, r.parallel.zero >= 2 ? parallel::GradSync::Mode::ReduceScatter : parallel::GradSync::Mode::AllReduce,
        int64_t(r.parallel.bucket_mb * (1 << 20)));
  // ZeRO shards over the flat layout of the gradient buckets (sync exists whenever dp > 1).
  if (r.parallel.zero >= 1 && sync)
    zero = std::make_unique<ZeroOptimizer>(dp, trainable, sync->layout(),
                                           [&](NamedParams ps) { return make_optimizer(r, std::move(ps)); },
                                           norm_weights, &mesh.model());
  else
    opt = make_optimizer(r, trainable);
  // ZeRO-3: parameters live as the masters' slices between uses (parallel/zero3.h).
  if (r.parallel.zero == 3 && zero) {
    zero->set_gather_after_step(false);
    std::vector<int> unit_of;
    for (auto& [n, p] : trainable) unit_of.push_back(models::layer_of(n));  // -1: kOuter
    shards = std::make_unique<parallel::ParamShards>(dp, trainable_tensors, unit_of, sync->layout(), zero->master());
    // Recomputes (grad on) run in backward, last layer first.
    parallel::ParamShards* sh = shards.get();
    t.model->before_layer = [sh](int64_t i) { sh->enter(int(i), grad_enabled()); };
    t.model->after_layer = [sh](int64_t i) { sh->release(int(i)); };
  }
  return o;
}

bool find_checkpoint(const Recipe& r, parallel::Communicator& world, const std::string& ckpt_dir, Checkpoint& ck) {
  if (r.checkpoint.resume == "never") return false;
  if (r.checkpoint.resume != "auto") {
    ck = load_checkpoint(r.checkpoint.resume);
    return true;
  }
  auto newest_below = [&](int64_t below) {  // this rank's newest usable step under `below`, or -1
    std::vector<std::string> skipped;
    const bool have = load_latest_checkpoint(ckpt_dir, ck, &skipped, below);
    for (auto& s : skipped) std::fprintf(stderr, "forge train: rank %d: skipping checkpoint %s\n", world.rank(), s.c_str());
    return have ? ck.step : int64_t(-1);
  };
  int64_t mine = newest_below(INT64_MAX);
  // Checkpoints that all fail to load stop the run (resuming from nothing would throw the run's
  // work away unseen); a rank without any (a new one) makes the others start over.
  const bool files = !list_checkpoints(ckpt_dir).empty();
  auto none_usable = [&] {
    FORGE_CHECK(!files, ckpt_dir, ": no usable checkpoint (each one's reason is above); move them away, name one ",
                "with checkpoint.resume, or start over with checkpoint.resume=never");
    return false;
  };
  if (world.size() == 1) return mine >= 0 || none_usable();
  const bool all_have_files = world.reduce({files ? 1.0 : 0.0}, parallel::ReduceOp::Min)[0] > 0;
  // Resume where every rank has a usable checkpoint: the oldest of the ranks' newest. A rank that
  // cannot use that step (missing, torn or corrupt there) sends every rank further back.
  for (;;) {
    const int64_t agreed = int64_t(world.reduce({double(mine)}, parallel::ReduceOp::Min)[0]);
    if (agreed < 0) {
      if (all_have_files) return none_usable();
      if (mine >= 0) std::fprintf(stderr, "forge train: rank %d: another rank has no checkpoint; starting over\n",
                                  world.rank());
      return false;
    }
    bool ok = true;
    if (ck.step != agreed) {
      try {
        ck = load_checkpoint(checkpoint_path(ckpt_dir, agreed));
      } catch (const std::exception& e) {
        std::fprintf(stderr, "forge train: rank %d: skipping checkpoint %s\n", world.rank(), e.what());
        ok = false;
      }
    }
    if (world.reduce({ok ? 1.0 : 0.0}, parallel::ReduceOp::Min)[0] > 0) return true;
    mine = newest_below(agreed);
  }
}

void restore(Checkpoint& ck, const Recipe& r, const std::string& layout, const std::string& fingerprint, Trainee& t,
             Optimisation& o, int world_size) {
  FORGE_CHECK(ck.attrs["layout"].empty() ? world_size == 1 : ck.attrs["layout"] == layout, ck.path,
              ": saved by a run with ", ck.attrs["layout"].empty() ? "one process" : ck.attrs["layout"],
              "; this run is ", layout, " (resume under the same layout, or start from the saved adapter/model)");
  FORGE_CHECK(ck.attrs["data"] == fingerprint, ck.path,
              ": made with other training data or tokenizer settings; use a new output.dir or checkpoint.resume=never");
  FORGE_CHECK(ck.attrs["peft"] == r.peft.method, ck.path, ": made with peft.method=", ck.attrs["peft"],
              ", this recipe has ", r.peft.method);
  NoGradGuard ng;
  for (auto& [n, p] : t.trainable) {
    auto it = ck.tensors.find("params/" + n);
    FORGE_CHECK(it != ck.tensors.end(), ck.path, ": no weight for trainable parameter '", n, "'");
    FORGE_CHECK(it->second.shape() == p.shape(), ck.path, ": '", n, "' has shape ", shape_str(it->second.shape()),
                ", the model needs ", shape_str(p.shape()));
    p.copy_(it->second);
  }
  std::map<std::string, Tensor> os;
  for (auto& [k, v] : ck.tensors)
    if (k.rfind("optim/", 0) == 0) os[k.substr(6)] = v;
  if (o.zero) o.zero->load_state_dict(os);
  else o.opt->load_state_dict(os);
  set_rng_state(default_generator(), ck.tensors.at("rng/default"));
  if (t.lora) set_rng_state(*t.lora->gen, ck.tensors.at("rng/lora"));
}

void report_memory(const Trainee& t, const Optimisation& o, int rank, double steady_peak_bytes, Device dev) {
  // What this rank holds for training between steps: resident trainable weights and the
  // optimiser's state (ZeRO divides both by dp; with ZeRO-3 the weights are only the masters).
  double bytes = 0;
  for (const Tensor& p : t.tensors) bytes += double(p.impl()->storage->nbytes ? p.nbytes() : 0);
  for (auto& [k, v] : o.zero ? o.zero->state_dict() : o.opt->state_dict()) bytes += double(v.nbytes());
  std::fprintf(stderr, "forge train: rank %d holds %.3f MiB of trainable weights and optimiser state\n",
                 rank, bytes / double(1 << 20));
  // The process's high-water mark: tensors of the steps after the first, and resident memory
  // (which also counts the blocks the CPU allocator keeps for reuse, FORGE_CPU_CACHE_MB).
  std::fprintf(stderr, "forge train: rank %d peak memory: %.0f MiB of tensors, %.0f MiB resident\n", rank,
               steady_peak_bytes / double(1 << 20), double(peak_rss_bytes()) / (1 << 20));
  if (dev.is_cuda())
    std::fprintf(stderr, "forge train: rank %d %s memory: peak %.0f MiB allocated, %.0f MiB reserved by the allocator\n",
                 rank, dev.str().c_str(), double(cuda::bytes_peak(dev.index)) / (1 << 20),
                 double(cuda::bytes_reserved(dev.index)) / (1 << 20));
}

Tensor optimizer_step(const Recipe& r, const parallel::Mesh& mesh, Trainee& t, Optimisation& o, double lr, Device dev) {
  if (o.sync) o.sync->finish();
  Tensor norm_clip;
  if (o.zero) {
    norm_clip = o.zero->step(lr, r.train.max_grad_norm, r.parallel.zero >= 2 ? &o.sync->shard_grad() : nullptr);
    o.zero->zero_grad();
  } else {
    std::vector<Tensor> grads;
    std::vector<double> weights;
    for (size_t i = 0; i < t.tensors.size(); ++i)
      if (t.tensors[i].grad().defined()) {
        grads.push_back(t.tensors[i].grad());
        weights.push_back(t.norm_weights[i]);
      }
    norm_clip = grad_norm_clip(grads, weights, r.train.max_grad_norm, dev, {&mesh.model()});
    o.opt->lr = lr;
    o.opt->step(norm_clip.narrow(0, 1, 1));
    o.opt->zero_grad();
  }
  if (o.shards && t.mp->tied_across_stages()) {  // ZeRO-3 updated only the masters: gather the new weight
    o.shards->release_all();
    o.shards->gather_outer();
  }
  t.mp->tied_sync_weight();
  if (o.shards) o.shards->release_all();
  return norm_clip;
}

}  // namespace forge::train
