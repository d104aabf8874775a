// The parts a training run is built from (train/trainer.cpp puts them together): the output
// directory, the model as a rank trains it, the optimiser side, resuming from a checkpoint, the
// optimiser step, and the memory report at the end.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/random.h"
#include "parallel/grad_sync.h"
#include "parallel/mesh.h"
#include "parallel/model_parallel.h"
#include "parallel/zero3.h"
#include "peft/lora.h"
#include "train/checkpoint.h"
#include "train/optimizer.h"
#include "train/recipe.h"
#include "train/zero.h"

namespace forge::train {

// A generator's state as a checkpoint tensor {seed, offset}, and back.
Tensor rng_state(const Generator& g);
void set_rng_state(Generator& g, const Tensor& t);

std::unique_ptr<Optimizer> make_optimizer(const Recipe& r, NamedParams params);

// Rank 0 makes what the run starts from: a random model when model.init asks for one, then
// output.dir and its recipe.yaml, once the model is known to fit.
void prepare_output(const Recipe& r, parallel::Communicator& world, Device dev);

// The model as this rank trains it: its part of the weights (tp shard of its pp stage), the
// adapters (LoRA, QLoRA) and what is trained here.
struct Trainee {
  std::shared_ptr<models::CausalLM> model;
  std::unique_ptr<peft::LoraModel> lora;
  std::unique_ptr<parallel::ModelParallel> mp;
  NamedParams trainable;             // trained on this rank
  std::vector<Tensor> tensors;       // the same tensors, in order
  std::vector<double> norm_weights;  // each one's weight in the global gradient norm
};
Trainee load_trainee(const Recipe& r, const parallel::Mesh& mesh, Device dev, const std::string& layout);

// The optimiser side of a run: gradient sync over dp, the optimiser (or its ZeRO shard) and
// ZeRO-3's parameter shards, which gather each layer's weights around its use.
struct Optimisation {
  std::unique_ptr<parallel::GradSync> sync;       // dp > 1
  std::unique_ptr<Optimizer> opt;                 // without ZeRO
  std::unique_ptr<ZeroOptimizer> zero;            // ZeRO-1/2/3
  std::unique_ptr<parallel::ParamShards> shards;  // ZeRO-3
};
Optimisation make_optimisation(const Recipe& r, const parallel::Mesh& mesh, Trainee& t);

// The checkpoint to resume from (checkpoint.resume): the newest that reads completely and that
// every rank has (the oldest of the ranks' newest), or the named file. False when there is none.
bool find_checkpoint(const Recipe& r, parallel::Communicator& world, const std::string& ckpt_dir, Checkpoint& ck);
// Puts a checkpoint's trained weights, optimiser state and random streams back, after checking
// that it was made by this layout, data and PEFT method.
void restore(Checkpoint& ck, const Recipe& r, const std::string& layout, const std::string& fingerprint, Trainee& t,
             Optimisation& o, int world_size);

// The update after a step's backward: gradients finished over dp, clipped by their global norm,
// weights updated, and the tied head copy (pp) given the new embedding. Returns {gradient norm,
// clip factor}, computed and applied on the device.
Tensor optimizer_step(const Recipe& r, const parallel::Mesh& mesh, Trainee& t, Optimisation& o, double lr, Device dev);

// What a rank held: its trainable weights and optimiser state, and its peak memory.
void report_memory(const Trainee& t, const Optimisation& o, int rank, double steady_peak_bytes, Device dev);

}  // namespace forge::train
