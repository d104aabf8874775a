// The training loop (see trainer.h).
#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "core/autograd.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/progress.h"
#include "data/packing.h"
#include "models/pretrained.h"
#include "peft/adapter_io.h"
#include "train/checkpoint.h"
#include "train/datasets.h"
#include "train/metrics.h"
#include "train/optimizer.h"
#include "train/schedule.h"

namespace forge::train {
namespace {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct StepPlan {
  int64_t epoch, first_mb, n_mb;
};

// Steps never cross epochs; the last step of an epoch takes what is left (fewer micro-batches).
// max_steps > 0 decides alone: it cuts the epochs short or runs more of them.
std::vector<StepPlan> plan_steps(const data::Batcher& b, const Recipe& r) {
  const int64_t max = r.train.max_steps;
  std::vector<StepPlan> plan;
  for (int64_t e = 0; max > 0 ? int64_t(plan.size()) < max : e < r.train.epochs; ++e) {
    const int64_t n = b.num_batches(e);
    for (int64_t first = 0; first < n && (max == 0 || int64_t(plan.size()) < max); first += r.train.grad_accum)
      plan.push_back({e, first, std::min(r.train.grad_accum, n - first)});
  }
  return plan;
}

// Summed cross-entropy over the batch's targets (f32 scalar).
Tensor batch_loss_sum(models::CausalLM& model, const data::Batch& b) {
  models::ForwardOptions fo;
  fo.positions = b.positions;
  fo.doc_ids = b.doc_ids;
  Tensor logits = model.forward(b.ids, fo);
  const int64_t V = logits.size(-1);
  return cross_entropy(logits.view({-1, V}), b.labels.view({-1}), -100, Reduction::Sum);
}

double evaluate(models::CausalLM& model, peft::LoraModel* lora, const data::Batcher& b, int64_t max_batches) {
  NoGradGuard ng;
  model.train(false);
  if (lora) lora->train(false);
  double loss = 0;
  int64_t targets = 0, n = b.num_batches(0);
  if (max_batches > 0) n = std::min(n, max_batches);
  for (int64_t i = 0; i < n; ++i) {
    data::Batch batch = b.batch(0, i);
    loss += batch_loss_sum(model, batch).item();
    targets += batch.targets;
  }
  model.train(true);
  if (lora) lora->train(true);
  return targets ? loss / double(targets) : NAN;
}

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

}  // namespace

TrainSummary run_training(const Recipe& r) {
  // The mesh: one process is dp = tp = pp = 1; larger meshes need one process per rank.
  const int64_t world = 1, mesh = r.parallel.dp * r.parallel.tp * r.parallel.pp;
  FORGE_CHECK(mesh == world, r.file, ": parallel.dp x tp x pp = ", mesh, " needs ", mesh,
              " processes, but this run has ", world, " (distributed launches: mpirun -np ", mesh, ")");
  fs::create_directories(r.output.dir);
  write_file_atomic(r.output.dir + "/recipe.yaml", recipe_to_yaml(r));
  manual_seed(uint64_t(r.train.seed));

  auto tok = data::Tokenizer::from_dir(r.model.path);
  Datasets data = load_datasets(r, *tok);
  const DType dtype = dtype_from_name(r.model.dtype);
  std::shared_ptr<models::CausalLM> model = models::load_model(r.model.path, dtype);
  model->checkpoint_layers = r.train.activation_checkpointing;
  model->train(true);

  // Trainable parameters: the adapters (LoRA) or every weight (full finetune).
  std::unique_ptr<peft::LoraModel> lora;
  NamedParams trainable;
  if (r.peft.method == "lora") {
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
  } else {
    for (auto& [n, p] : model->named_parameters()) {
      p.requires_grad_(true);
      trainable.emplace_back(n, p);
    }
  }
  int64_t n_trainable = 0;
  for (auto& [n, p] : trainable) n_trainable += p.numel();
  std::vector<Tensor> trainable_tensors;
  for (auto& [n, p] : trainable) trainable_tensors.push_back(p);
  std::fprintf(stderr, "forge train: %s, %.2fM parameters, %s: %.3fM trainable (%.2f%%), %s\n", r.model.path.c_str(),
               double(model->num_parameters()) / 1e6, lora ? "LoRA" : "full finetune", double(n_trainable) / 1e6,
               100.0 * double(n_trainable) / double(model->num_parameters()), r.model.dtype.c_str());

  data::Batcher batcher(data.train, r.data.max_seq_len, r.train.batch_size, r.data.packing, r.data.shuffle,
                        uint64_t(r.train.seed));
  std::unique_ptr<data::Batcher> eval_batcher;
  if (data.eval.size() > 0)
    eval_batcher = std::make_unique<data::Batcher>(data.eval, r.data.max_seq_len, r.train.batch_size, r.data.packing,
                                                   false, 0);
  const std::vector<StepPlan> plan = plan_steps(batcher, r);
  const int64_t total = int64_t(plan.size());
  std::unique_ptr<Optimizer> opt = make_optimizer(r, trainable);

  // Resume: the newest checkpoint that reads completely (or the named one).
  const std::string ckpt_dir = r.output.dir + "/checkpoints";
  int64_t start = 0;
  Checkpoint ck;
  bool have = false;
  if (r.checkpoint.resume == "auto") {
    std::vector<std::string> skipped;
    have = load_latest_checkpoint(ckpt_dir, ck, &skipped);
    for (auto& s : skipped) std::fprintf(stderr, "forge train: skipping unreadable checkpoint: %s\n", s.c_str());
  } else if (r.checkpoint.resume != "never") {
    ck = load_checkpoint(r.checkpoint.resume);
    have = true;
  }
  if (have) {
    FORGE_CHECK(ck.attrs["data"] == data.fingerprint, ck.path,
                ": made with other training data or tokenizer settings; use a new output.dir or checkpoint.resume=never");
    FORGE_CHECK(ck.attrs["peft"] == r.peft.method, ck.path, ": made with peft.method=", ck.attrs["peft"],
                ", this recipe has ", r.peft.method);
    NoGradGuard ng;
    for (auto& [n, p] : trainable) {
      auto it = ck.tensors.find("params/" + n);
      FORGE_CHECK(it != ck.tensors.end(), ck.path, ": no weight for trainable parameter '", n, "'");
      FORGE_CHECK(it->second.shape() == p.shape(), ck.path, ": '", n, "' has shape ", shape_str(it->second.shape()),
                  ", the model needs ", shape_str(p.shape()));
      p.copy_(it->second);
    }
    std::map<std::string, Tensor> os;
    for (auto& [k, v] : ck.tensors)
      if (k.rfind("optim/", 0) == 0) os[k.substr(6)] = v;
    opt->load_state_dict(os);
    set_rng_state(default_generator(), ck.tensors.at("rng/default"));
    if (lora) set_rng_state(*lora->gen, ck.tensors.at("rng/lora"));
    start = ck.step;
    std::fprintf(stderr, "forge train: resuming from %s (step %lld of %lld)\n", ck.path.c_str(), (long long)start,
                 (long long)total);
  }

  auto save_ckpt = [&](int64_t step) {
    std::map<std::string, Tensor> t;
    for (auto& [n, p] : trainable) t["params/" + n] = p.detach();
    for (auto& [k, v] : opt->state_dict()) t["optim/" + k] = v;
    t["rng/default"] = rng_state(default_generator());
    if (lora) t["rng/lora"] = rng_state(*lora->gen);
    Hdf5Attrs a{{"data", data.fingerprint}, {"peft", r.peft.method}, {"total_steps", std::to_string(total)}};
    if (step < total) {
      a["next_epoch"] = std::to_string(plan[size_t(step)].epoch);
      a["next_micro_batch"] = std::to_string(plan[size_t(step)].first_mb);
    }
    save_checkpoint(ckpt_dir, step, t, a, r.checkpoint.keep);
  };

  MetricsLog metrics(r.output.dir + "/metrics.jsonl", have ? start : -1);
  TrainSummary sum;
  sum.steps = total;
  sum.start_step = start;
  sum.eval_loss = NAN;
  std::fprintf(stderr, "forge train: %lld steps of %lld x %lld rows of up to %lld tokens (%s), %lld epoch(s)\n",
               (long long)total, (long long)r.train.grad_accum, (long long)r.train.batch_size,
               (long long)r.data.max_seq_len, r.data.packing ? "packed" : "one example per row",
               (long long)(plan.empty() ? 0 : plan.back().epoch + 1));

  ProgressBar bar("train", total, r.logging.progress, "step");
  auto t_run = Clock::now();
  int64_t run_tokens = 0;
  double run_seconds = 0;
  bool saved_last = have && start == total;
  for (int64_t s = start; s < total; ++s) {
    const StepPlan& sp = plan[size_t(s)];
    auto t0 = Clock::now();
    std::vector<data::Batch> mbs;
    int64_t targets = 0, tokens = 0;
    for (int64_t i = 0; i < sp.n_mb; ++i) {
      mbs.push_back(batcher.batch(sp.epoch, sp.first_mb + i));
      targets += mbs.back().targets;
      tokens += mbs.back().tokens;
    }
    // The step's loss is the mean over all its target tokens: each micro-batch's summed loss
    // is divided by the step's total, so accumulation and packing give the same gradient.
    double loss = 0;
    for (auto& b : mbs) {
      Tensor l = batch_loss_sum(*model, b);
      loss += l.item();
      mul(l, 1.0 / double(std::max<int64_t>(targets, 1))).backward();
    }
    loss /= double(std::max<int64_t>(targets, 1));
    const double norm = clip_grad_norm(trainable_tensors, r.train.max_grad_norm);
    opt->lr = lr_at(r.schedule.name, r.optim.lr, s, total, r.schedule.warmup_steps, r.schedule.min_lr_ratio);
    opt->step();
    opt->zero_grad();
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    run_tokens += tokens;
    run_seconds += dt;
    FORGE_CHECK(std::isfinite(loss), "step ", s + 1, ": the loss is ", loss, " (lower optim.lr or check the data)");
    if (s == start) sum.first_loss = loss;
    sum.last_loss = loss;
    const int64_t step = s + 1;
    if (step % r.logging.every == 0 || step == total)
      metrics.write({{"step", step}, {"epoch", sp.epoch}, {"loss", loss}, {"lr", opt->lr}, {"grad_norm", norm},
                     {"tokens", tokens}, {"tokens_per_s", double(tokens) / dt},
                     {"elapsed_s", std::chrono::duration<double>(Clock::now() - t_run).count()}});
    if (eval_batcher && r.logging.eval_every > 0 && step % r.logging.eval_every == 0 && step < total) {
      const double el = evaluate(*model, lora.get(), *eval_batcher, r.logging.eval_batches);
      metrics.write({{"step", step}, {"eval_loss", el}, {"eval_ppl", std::exp(el)}});
    }
    char status[160];
    std::snprintf(status, sizeof status, " loss %.4f lr %.2e %.0f tok/s", loss, opt->lr, double(tokens) / dt);
    bar.update(step, status);
    saved_last = false;
    if ((r.checkpoint.every > 0 && step % r.checkpoint.every == 0) || step == total) {
      save_ckpt(step);
      saved_last = step == total;
    }
  }
  if (!saved_last && total > 0 && start < total) save_ckpt(total);
  bar.finish();
  sum.tokens_per_s = run_seconds > 0 ? double(run_tokens) / run_seconds : 0;

  if (eval_batcher) {
    sum.eval_loss = evaluate(*model, lora.get(), *eval_batcher, r.logging.eval_batches);
    metrics.write({{"step", total}, {"eval_loss", sum.eval_loss}, {"eval_ppl", std::exp(sum.eval_loss)}});
    std::fprintf(stderr, "forge train: eval loss %.4f (perplexity %.2f)\n", sum.eval_loss, std::exp(sum.eval_loss));
  }
  if (lora) {
    sum.adapter_dir = r.output.dir + "/adapter";
    peft::save_adapter(*lora, sum.adapter_dir);
    std::fprintf(stderr, "forge train: adapter -> %s\n", sum.adapter_dir.c_str());
  } else {
    sum.model_dir = r.output.dir + "/model";
    models::copy_model_files(r.model.path, sum.model_dir);
    models::save_model(*model, sum.model_dir);
    std::fprintf(stderr, "forge train: model -> %s\n", sum.model_dir.c_str());
  }
  Curve train_curve, eval_curve;
  read_loss_curves(metrics.path(), train_curve, eval_curve);
  write_loss_curve_svg(r.output.dir + "/loss_curve.svg", train_curve, eval_curve,
                       "forge train: " + fs::path(r.output.dir).filename().string());
  std::fprintf(stderr, "forge train: metrics -> %s, loss curve -> %s/loss_curve.svg\n", metrics.path().c_str(),
               r.output.dir.c_str());
  return sum;
}

}  // namespace forge::train
