// The training loop (see trainer.h).
#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>

#include "core/autograd.h"
#include "core/device_stats.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/process_memory.h"
#include "core/progress.h"
#include "core/storage.h"
#include "data/packing.h"
#include "kernels/cuda/cuda_backend.h"
#include "models/naming.h"
#include "models/pretrained.h"
#include "parallel/grad_sync.h"
#include "parallel/mesh.h"
#include "parallel/model_parallel.h"
#include "parallel/pipeline.h"
#include "parallel/zero3.h"
#include "peft/adapter_io.h"
#include "peft/nf4.h"
#include "train/checkpoint.h"
#include "train/stop_request.h"
#include "train/datasets.h"
#include "train/device_memory.h"
#include "train/init_model.h"
#include "train/metrics.h"
#include "train/method.h"
#include "train/optimizer.h"
#include "train/schedule.h"
#include "train/setup.h"
#include "train/zero.h"

namespace forge::train {
namespace {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct StepPlan {
  int64_t epoch, first_mb, n_mb;
};

// A step's micro-batches for this rank (already on the device) and what they hold.
struct StepBatches {
  std::vector<data::Batch> mbs;
  double units = 0;  // the method's normaliser (SFT: target tokens; DPO: pairs)
  int64_t tokens = 0;
};

// Steps never cross epochs; the last step of an epoch takes what is left (fewer micro-batches).
// max_steps > 0 decides alone: it cuts the epochs short or runs more of them. A method that makes
// its rows (per_epoch > 0) has that many steps per epoch, first_mb numbering them.
std::vector<StepPlan> plan_steps(const data::Batcher* b, int64_t per_epoch, const Recipe& r) {
  const int64_t max = r.train.max_steps;
  std::vector<StepPlan> plan;
  for (int64_t e = 0; max > 0 ? int64_t(plan.size()) < max : e < r.train.epochs; ++e) {
    const int64_t n = b ? b->num_batches(e) : per_epoch, stride = b ? r.train.grad_accum : 1;
    for (int64_t first = 0; first < n && (max == 0 || int64_t(plan.size()) < max); first += stride)
      plan.push_back({e, first, std::min(stride, n - first)});
  }
  return plan;
}

// A micro-batch as the model's device takes it: labels, positions and document ids moved once
// (every layer reads them); ids stay on the host, where the embedding checks them before its copy.
data::Batch on_device(data::Batch b, Device dev) {
  if (dev.is_cpu()) return b;
  b.labels = b.labels.to(dev);
  b.positions = b.positions.to(dev);
  if (b.doc_ids.defined()) b.doc_ids = b.doc_ids.to(dev);
  return b;
}

// Device values read back in one copy: each defined part flattened to f32, in order.
std::vector<float> read_back(const std::vector<Tensor>& parts) {
  std::vector<Tensor> flat;
  for (const Tensor& t : parts)
    if (t.defined()) flat.push_back(t.to(DType::F32).reshape({-1}));
  if (flat.empty()) return {};
  return (flat.size() == 1 ? flat[0] : cat(flat)).to_float_vector();
}

// The method's mean loss over the eval set (and its metrics, as eval_*, into `line`); data-parallel
// replicas take every dp-th batch and sum their parts.
double evaluate(models::CausalLM& model, peft::LoraModel* lora, const parallel::ModelParallel& mp, Method& method,
                const data::Batcher* b, int64_t max_batches, const parallel::Mesh& mesh,
                parallel::ParamShards* shards, nlohmann::json& line) {
  if (method.has_eval()) {
    method.evaluate(line);
    return NAN;
  }
  NoGradGuard ng;
  model.train(false);
  if (lora) lora->train(false);
  method.reset_metrics();
  double units = 0;
  Tensor loss;
  int64_t n = b->num_batches(0);
  if (max_batches > 0) n = std::min(n, max_batches);
  std::vector<data::Batch> mine;
  for (int64_t i = mesh.dp_rank(); i < n; i += mesh.shape().dp) {
    data::Batch batch = b->batch(0, i);
    units += method.units(batch);
    if (batch.targets > 0) mine.push_back(on_device(batch, model.device()));
  }
  method.before_pass(mine, true);
  const Head head = [&method](const Tensor& h, const data::Batch& mb, int64_t i) { return method.loss_sum(h, mb, i); };
  forward_only(model, mp, mesh, mine, head, shards, &loss);
  model.train(true);
  if (lora) lora->train(true);
  const std::vector<float> v = read_back({loss, method.metric_sums()});  // the loss (where summed), then sums
  const size_t k = loss.defined() ? 1 : 0;
  auto total = mesh.world().sum({mp.reports() && k ? double(v[0]) : 0.0, mp.reports() ? units : 0.0});
  method.take_metrics(std::vector<float>(v.begin() + long(k), v.end()), line, total[1], "eval_");
  return total[1] > 0 ? total[0] / total[1] : NAN;
}

}  // namespace

TrainSummary run_training(const Recipe& r) {
  // The mesh: one process is dp = tp = pp = 1; larger meshes need one process per rank.
  parallel::set_timeout(r.parallel.timeout_s);
  parallel::Communicator& world = parallel::world();
  const Device dev = resolve_device(r.model.device, "model.device");  // before anything is loaded
  parallel::Mesh mesh(world, {int(r.parallel.dp), int(r.parallel.tp), int(r.parallel.pp)}, dev);
  parallel::Communicator& dp = mesh.dp();
  const bool lead = world.rank() == 0;  // writes metrics, the recipe copy and the final model
  // Printed, and kept in each rank's checkpoints: resuming needs the same layout.
  const std::string layout = mesh.shape().str() + " zero " + std::to_string(r.parallel.zero) +
                             (r.parallel.pp > 1 ? " " + r.parallel.schedule : "");
  const parallel::Schedule schedule = parallel::schedule_from_name(r.parallel.schedule);
  // Rank 0 goes first where files are made (a random model, the token cache); the others read them.
  auto rank0_first = [&](const std::function<void()>& fn) {
    if (lead) fn();
    world.barrier();
    if (!lead) fn();
  };
  prepare_output(r, world, dev);
  manual_seed(uint64_t(r.train.seed));

  auto tok = data::Tokenizer::from_dir(r.model.path);
  Datasets data;
  rank0_first([&] { data = load_datasets(r, *tok); });
  Trainee t = load_trainee(r, mesh, dev, layout);
  std::shared_ptr<models::CausalLM>& model = t.model;
  std::unique_ptr<peft::LoraModel>& lora = t.lora;
  parallel::ModelParallel& mp = *t.mp;
  NamedParams& trainable = t.trainable;

  Optimisation o = make_optimisation(r, mesh, t);
  std::unique_ptr<parallel::GradSync>& sync = o.sync;
  std::unique_ptr<Optimizer>& opt = o.opt;
  std::unique_ptr<ZeroOptimizer>& zero = o.zero;
  std::unique_ptr<parallel::ParamShards>& shards = o.shards;
  const std::unique_ptr<Method> method = make_method(MethodContext{r, mesh, *model, mp, lora.get(), shards.get()});
  const Head head = [&method](const Tensor& h, const data::Batch& b, int64_t i) { return method->loss_sum(h, b, i); };

  // Data parallelism: a global micro-batch holds batch_size rows (groups: DPO's pairs) per dp
  // rank; rank i takes rows [i * batch_size, (i + 1) * batch_size) of it, so dp ranks see what one
  // process with batch_size x dp rows would. Groups stay whole, one per row, never packed.
  // A method that makes its rows (GRPO) needs no batcher.
  const int64_t group = method->group(), rows_per_rank = r.train.batch_size * group;
  const int64_t own_steps = method->steps_per_epoch();
  const bool packing = r.data.packing && group == 1;
  std::unique_ptr<data::Batcher> batcher, eval_batcher;
  if (!own_steps)
    batcher = std::make_unique<data::Batcher>(data.train, r.data.max_seq_len, rows_per_rank * dp.size(), packing,
                                              r.data.shuffle, uint64_t(r.train.seed), group);
  if (data.eval.size() > 0)
    eval_batcher = std::make_unique<data::Batcher>(data.eval, r.data.max_seq_len, rows_per_rank, packing, false, 0, group);
  const bool can_eval = eval_batcher || method->has_eval();
  const std::vector<StepPlan> plan = plan_steps(batcher.get(), own_steps, r);
  const int64_t total = int64_t(plan.size());

  // Resume: the newest checkpoint that reads completely (or the named one).
  std::string ckpt_dir = r.output.dir + "/checkpoints";
  if (world.size() > 1) {
    char sub[32];
    std::snprintf(sub, sizeof sub, "/rank_%05d", world.rank());
    ckpt_dir += sub;
  }
  Checkpoint ck;
  const bool have = find_checkpoint(r, world, ckpt_dir, ck);
  int64_t start = 0;
  if (have) {
    restore(ck, r, layout, data.fingerprint, t, o, world.size());
    std::map<std::string, Tensor> state;
    for (auto& [k, v] : ck.tensors)
      if (k.rfind("method/", 0) == 0) state[k.substr(7)] = v;
    method->load_state(state);
    start = ck.step;
    if (lead)
      std::fprintf(stderr, "forge train: resuming from %s (step %lld of %lld)\n", ck.path.c_str(), (long long)start,
                   (long long)total);
  }

  // The last stage's copy of a tied embedding is not in its checkpoint: take the owner's weight.
  mp.tied_sync_weight();
  if (shards) shards->gather_outer();
  method->before_training(data, have);
  if (shards) shards->release_all();
  auto eval_now = [&](nlohmann::json& line) {
    if (shards) shards->gather_outer();
    const double el =
        evaluate(*model, lora.get(), mp, *method, eval_batcher.get(), r.logging.eval_batches, mesh, shards.get(), line);
    if (shards) shards->release_all();
    return el;
  };

  auto save_ckpt = [&](int64_t step) {
    if (shards) shards->gather_all();
    std::map<std::string, Tensor> t;
    for (auto& [n, p] : trainable) t["params/" + n] = p.detach();
    for (auto& [k, v] : zero ? zero->state_dict() : opt->state_dict()) t["optim/" + k] = v;
    t["rng/default"] = rng_state(default_generator());
    if (lora) t["rng/lora"] = rng_state(*lora->gen);
    for (auto& [k, v] : method->state()) t["method/" + k] = v;
    Hdf5Attrs a{{"data", data.fingerprint}, {"peft", r.peft.method}, {"total_steps", std::to_string(total)}};
    if (world.size() > 1) a["layout"] = layout;
    if (step < total) {
      a["next_epoch"] = std::to_string(plan[size_t(step)].epoch);
      a["next_micro_batch"] = std::to_string(plan[size_t(step)].first_mb);
    }
    save_checkpoint(ckpt_dir, step, t, a, r.checkpoint.keep);
    if (shards) shards->release_all();
  };

  std::unique_ptr<MetricsLog> metrics;
  if (lead) metrics = std::make_unique<MetricsLog>(r.output.dir + "/metrics.jsonl", have ? start : -1);
  auto log = [&](const nlohmann::json& j) {
    if (metrics) metrics->write(j);
  };
  TrainSummary sum;
  sum.steps = total;
  sum.start_step = start;
  sum.eval_loss = NAN;
  if (lead && !own_steps)
    std::fprintf(stderr, "forge train: %lld steps of %lld x %lld %s of up to %lld tokens (%s), %lld epoch(s)\n",
                 (long long)total, (long long)r.train.grad_accum, (long long)(r.train.batch_size * dp.size()),
                 group == 2 ? "pairs" : "rows", (long long)r.data.max_seq_len,
                 group == 2 ? "each side a row" : packing ? "packed" : "one example per row",
                 (long long)(plan.empty() ? 0 : plan.back().epoch + 1));

  ProgressBar bar("train", total, r.logging.progress && lead, "step");
  int64_t stall_step = -1;
  if (const char* st = std::getenv("FORGE_TEST_STALL"); st && std::atoi(st) == world.rank())
    stall_step = std::atoll(std::strchr(st, ':') ? std::strchr(st, ':') + 1 : "1");
  // FORGE_TEST_SIGNAL=RANK:STEP:SIGNUM (stop-request tests): that rank sends the signal to itself as the step starts.
  int64_t signal_step = -1;
  int test_signal = 0;
  if (const char* ts = std::getenv("FORGE_TEST_SIGNAL")) {
    int rank = -1;
    long long st = -1;
    if (std::sscanf(ts, "%d:%lld:%d", &rank, &st, &test_signal) == 3 && rank == world.rank()) signal_step = st;
  }
  auto t_run = Clock::now();
  int64_t run_tokens = 0, steady_tokens = 0, interval_tokens = 0;
  double run_seconds = 0, steady_seconds = 0, interval_seconds = 0;
  double loss = NAN, norm = NAN, rate = 0;  // as of the last logged step
  std::string method_status;                // the method's metrics for the progress bar
  std::vector<float> method_sums;           // and as read back with the loss
  const bool sft = r.train.method == "sft";  // a token cross-entropy, whose exp is a perplexity
  bool saved_last = have && start == total;
  StopRequest stop_request;
  // A step's micro-batches on this rank: every stage and tp rank of a dp replica builds the same
  // rows (each stage needs the ids, positions or labels); micro-batches without targets (an empty
  // share at an epoch's end) are left out, the same way on every rank of the pipeline.
  auto load_step = [&](int64_t s) {
    const StepPlan& sp = plan[size_t(s)];
    StepBatches sb;
    auto add = [&](data::Batch b) {
      sb.units += method->units(b);
      sb.tokens += b.tokens;
      if (b.targets > 0) sb.mbs.push_back(on_device(std::move(b), dev));
    };
    if (own_steps) {
      for (data::Batch& b : method->make_step(s, sp.epoch)) add(std::move(b));
      return sb;
    }
    for (int64_t i = 0; i < sp.n_mb; ++i)
      add(batcher->batch(sp.epoch, sp.first_mb + i, dp.rank() * rows_per_rank, (dp.rank() + 1) * rows_per_rank));
    return sb;
  };
  auto eval_text = [&](const nlohmann::json& line) {  // an eval line in words
    if (std::string own = method->eval_text(line); !own.empty()) return own;
    char text[160];
    const double el = line["eval_loss"].get<double>();
    if (sft) std::snprintf(text, sizeof text, "loss %.4f (perplexity %.2f)", el, std::exp(el));
    else
      std::snprintf(text, sizeof text, "loss %.4f, reward accuracy %.3f, margin %.4f, chosen more likely in %.1f%% of pairs",
                    el, line.value("eval_rewards/accuracies", 0.0), line.value("eval_rewards/margins", 0.0),
                    100.0 * line.value("eval_logps/accuracies", 0.0));
    return std::string(text);
  };
  auto log_eval = [&](int64_t step) {
    nlohmann::json line = {{"step", step}};
    const double el = eval_now(line);
    if (!std::isnan(el)) line["eval_loss"] = el;
    if (sft) line["eval_ppl"] = std::exp(el);
    log(line);
    return line;
  };
  if (can_eval && r.logging.eval_on_start && start == 0 && total > 0) {
    const nlohmann::json line = log_eval(0);
    if (lead) std::fprintf(stderr, "forge train: before training: eval %s\n", eval_text(line).c_str());
  }
  std::optional<StepBatches> next;   // built during the previous step (GPU runs)
  DeviceStats prefetched, carried;   // copies made for the next step during this one, and for this one
  for (int64_t s = start; s < total; ++s) {
    const StepPlan& sp = plan[size_t(s)];
    parallel::set_step(s + 1);
    if (stall_step == s + 1) {  // FORGE_TEST_STALL=RANK:STEP (timeout tests): this rank stops answering
      std::fprintf(stderr, "forge train: FORGE_TEST_STALL: rank %d stalls at step %lld\n", world.rank(), (long long)(s + 1));
      for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    if (signal_step == s + 1) send_stop_signal(test_signal);
    auto t0 = Clock::now();
    const DeviceStats stats0 = device_stats();
    StepBatches cur = next ? std::move(*next) : load_step(s);
    next.reset();
    std::vector<data::Batch>& mbs = cur.mbs;
    // The step's loss is the mean over all its units (SFT: target tokens; of every dp rank): each
    // micro-batch's summed loss is divided by the step's total, so accumulation, packing and data
    // parallelism all give the gradient of one big batch.
    const auto counts = dp.sum({cur.units, double(cur.tokens)});
    const double targets = std::max(counts[0], 1.0);
    const int64_t tokens = int64_t(counts[1]);
    Tensor loss_sum;  // on the device
    // ZeRO-3: as many micro-batches as the dp rank with the most (agreed before any gather: a
    // blocking reduce inside the gathers' sequence would deadlock); the missing ones are phantoms.
    const int64_t n_mb = shards ? int64_t(dp.reduce({double(mbs.size())}, parallel::ReduceOp::Max)[0])
                                : int64_t(mbs.size());
    parallel::Stage stage = make_stage(*model, mp, mbs, head, 1.0 / targets, &loss_sum, shards.get());
    stage.before_backward = [&](int64_t i) {
      if (sync) sync->set_sync(i + 1 == n_mb);  // reduce once, after the last micro-batch
      if (i + 1 == n_mb) mp.tied_add_grad();    // before the embedding's hooks fire
    };
    if (shards) shards->gather_outer();
    method->reset_metrics();  // a logged step reports its own pairs
    method->before_pass(mbs, false);
    parallel::run_pipeline(schedule, n_mb, mesh.pp(), stage);
    // On a GPU the step's kernels are queued now: the next step's batches are built and their
    // copies queued while they run (the first read back below waits for this step's work). Not
    // rows a method makes: they come from the weights after this step.
    if (dev.is_cuda() && s + 1 < total && !own_steps) {
      const DeviceStats p0 = device_stats();
      next = load_step(s + 1);
      prefetched = device_stats() - p0;
    }
    if (n_mb == 0) mp.tied_add_grad();
    mp.tied_send_grad();
    const double lr = lr_at(r.schedule.name, r.optim.lr, s, total, r.schedule.warmup_steps, r.schedule.min_lr_ratio);
    const Tensor norm_clip = optimizer_step(r, mesh, t, o, lr, dev);
    const int64_t step = s + 1;
    // The loss and the norm come back once per logged step (and at the first, for the summary), in
    // one copy: in between, a GPU runs ahead of the host.
    const bool logged = step % r.logging.every == 0 || step == total;
    if (logged || s == start) {
      // {loss (where summed), gradient norm, the method's metric sums (logged steps)}
      const std::vector<float> v = read_back({loss_sum, norm_clip.narrow(0, 0, 1), logged ? method->metric_sums() : Tensor()});
      const size_t k = loss_sum.defined() ? 1 : 0;
      loss = world.sum({mp.reports() && k ? double(v[0]) : 0.0})[0] / targets;
      norm = v[k];
      method_sums.assign(v.begin() + long(k) + 1, v.end());
      FORGE_CHECK(std::isfinite(loss), "step ", step, ": the loss is ", loss, " (lower optim.lr or check the data)");
      if (s == start) sum.first_loss = loss;
      sum.last_loss = loss;
    }
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    run_tokens += tokens;
    run_seconds += dt;
    interval_tokens += tokens;
    interval_seconds += dt;
    if (s > start) {
      steady_tokens += tokens;
      steady_seconds += dt;
      sum.steady_peak_bytes = double(cpu_bytes_peak());
    } else {
      reset_cpu_bytes_peak();  // the steps after this one show the steady-state memory
    }
    if (logged) {
      rate = double(interval_tokens) / interval_seconds;  // since the last logged step (its read back waited)
      interval_tokens = 0;
      interval_seconds = 0;
    }
    if (logged) {
      nlohmann::json line = {{"step", step}, {"epoch", sp.epoch}, {"loss", loss}, {"lr", lr}, {"grad_norm", norm},
                             {"tokens", tokens}, {"tokens_per_s", rate},
                             {"elapsed_s", std::chrono::duration<double>(Clock::now() - t_run).count()}};
      method_status = method->take_metrics(method_sums, line, targets, "");
      if (dev.is_cuda()) {  // what this step cost the host, on the rank it cost most: copies each way,
                            // ops run on host copies, device memory in use (the prefetched batches
                            // count for the step they belong to)
        const DeviceStats d = device_stats() - stats0 - prefetched + carried;
        const std::vector<double> most = world.reduce(
            {double(d.h2d), double(d.d2h), double(d.host_fallbacks), double(cuda::bytes_in_use(dev.index))},
            parallel::ReduceOp::Max);
        line["h2d"] = int64_t(most[0]);
        line["d2h"] = int64_t(most[1]);
        line["host_fallbacks"] = int64_t(most[2]);
        line["device_mib"] = most[3] / (1 << 20);
      }
      log(line);
    }
    if (can_eval && r.logging.eval_every > 0 && step % r.logging.eval_every == 0 && step < total) {
      log_eval(step);
    }
    char status[200];
    std::snprintf(status, sizeof status, " loss %.4f%s lr %.2e %.0f tok/s", loss, method_status.c_str(), lr, rate);
    bar.update(step, status);
    saved_last = false;
    carried = prefetched;
    prefetched = DeviceStats();
    // Every rank stops after the same step, whichever ranks the signal reached.
    int sig = stop_request.signal();
    if (world.size() > 1) sig = int(world.reduce({double(sig)}, parallel::ReduceOp::Max)[0]);
    if ((r.checkpoint.every > 0 && step % r.checkpoint.every == 0) || step == total || sig) {
      save_ckpt(step);
      saved_last = step == total;
    }
    if (sig && step < total) {
      sum.stopped_by = sig;
      sum.stopped_at = step;
      break;
    }
  }
  if (!saved_last && total > 0 && start < total && !sum.stopped_by) save_ckpt(total);
  bar.finish();
  auto write_curve = [&] {
    Curve train_curve, eval_curve;
    read_curves(metrics->path(), train_curve, eval_curve);
    write_curve_svg(r.output.dir + "/loss_curve.svg", train_curve, eval_curve,
                    "forge train: " + fs::path(r.output.dir).filename().string());
    method->finish(metrics->path());
    std::fprintf(stderr, "forge train: metrics -> %s, loss curve -> %s/loss_curve.svg\n", metrics->path().c_str(),
                 r.output.dir.c_str());
  };
  if (sum.stopped_by) {
    if (lead) {
      write_curve();
      std::fprintf(stderr,
                   "forge train: %s: stopped after step %lld of %lld; checkpoint %s%s\n"
                   "forge train: the same command with checkpoint.resume=auto continues from there\n",
                   signal_name(sum.stopped_by), (long long)sum.stopped_at, (long long)total,
                   checkpoint_path(ckpt_dir, sum.stopped_at).c_str(), world.size() > 1 ? " (and one for each other rank)" : "");
    }
    world.barrier();
    return sum;
  }
  sum.tokens_per_s = run_seconds > 0 ? double(run_tokens) / run_seconds : 0;
  sum.steady_tokens_per_s = steady_seconds > 0 ? double(steady_tokens) / steady_seconds : 0;

  if (can_eval) {
    const nlohmann::json line = log_eval(total);
    sum.eval_loss = line.value("eval_loss", double(NAN));
    if (lead) std::fprintf(stderr, "forge train: eval %s\n", eval_text(line).c_str());
  }
  report_memory(t, o, world.rank(), sum.steady_peak_bytes, dev);
  // Rank 0 gathers the whole trained weights (dp and ZeRO 1-2 hold them whole on every replica;
  // tp and pp split them) and writes one adapter or model that any layout, or one process, loads.
  if (shards) shards->gather_all();
  mp.gather_to_rank0();
  if (lora) sum.adapter_dir = r.output.dir + "/adapter";
  else sum.model_dir = r.output.dir + "/model";
  if (lead) {
    if (lora) {
      peft::save_adapter(*lora, sum.adapter_dir);
      std::fprintf(stderr, "forge train: adapter -> %s\n", sum.adapter_dir.c_str());
    } else {
      models::copy_model_files(r.model.path, sum.model_dir);
      models::save_model(*model, sum.model_dir);
      std::fprintf(stderr, "forge train: model -> %s\n", sum.model_dir.c_str());
    }
    write_curve();
  }
  world.barrier();  // nobody leaves before the files are written
  return sum;
}

}  // namespace forge::train
