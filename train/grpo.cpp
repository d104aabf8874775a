// GRPO as a training method (see grpo.h).
#include "train/grpo.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "core/autograd.h"
#include "core/error.h"
#include "core/ops.h"
#include "models/pretrained.h"
#include "train/grpo_loss.h"
#include "train/metrics.h"
#include "train/rollouts.h"

namespace forge::train {
namespace {
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// The rollout engine over the model being trained, its KV cache sized for one batch of rollouts.
std::unique_ptr<infer::Engine> make_engine(const MethodContext& ctx, std::shared_ptr<data::Tokenizer> tok) {
  const Recipe& r = ctx.recipe;
  const models::ModelConfig& c = ctx.model.config();
  infer::EngineConfig ec;
  ec.kv_cache_dtype = ctx.model.dtype() == DType::F32 ? DType::F32 : DType::BF16;  // the trainer's precision
  ec.max_model_len = std::min(c.max_position_embeddings, r.grpo.max_prompt_len + r.grpo.max_completion_length);
  const int64_t rows = r.train.batch_size * r.grpo.num_generations;
  ec.max_num_seqs = std::clamp<int64_t>(rows, 1, 256);
  const double tokens = double(rows) * double(ec.max_model_len + ec.block_size);
  ec.kv_cache_bytes = r.grpo.kv_cache_mb > 0 ? int64_t(r.grpo.kv_cache_mb * (1 << 20))
                                             : int64_t(tokens) * infer::kv_bytes_per_token(c, ec.kv_cache_dtype);
  ec.inference_layouts = ctx.lora != nullptr;  // a frozen base may be re-laid out; trained weights may not
  std::shared_ptr<models::CausalLM> model(&ctx.model, [](models::CausalLM*) {});  // the trainer owns it
  return std::make_unique<infer::Engine>(model, std::move(tok), models::stop_token_ids(r.model.path, c), ec);
}

std::vector<json> plain_rows(const std::vector<data::Prompt>& ps) {  // what the rewards read
  std::vector<json> rows;
  for (const auto& p : ps) rows.push_back(json::parse(p.row.dump()));
  return rows;
}

class Grpo : public Method {
 public:
  explicit Grpo(const MethodContext& ctx) : ctx_(ctx), r_(ctx.recipe) {
    const Recipe::Grpo& g = r_.grpo;
    opts_ = GrpoOptions{g.loss_type, g.epsilon, g.epsilon_high > 0 ? g.epsilon_high : g.epsilon, g.beta,
                        g.max_completion_length};
    const json list = json::parse(g.rewards);
    for (size_t i = 0; i < list.size(); ++i)
      rewards_.push_back(make_reward(list[i], r_.file + ": grpo.rewards[" + std::to_string(i) + "]"));
    auto tok = data::Tokenizer::from_dir(r_.model.path);
    const data::PromptOptions po{g.max_prompt_len, r_.data.skip_malformed};
    prompts_ = read_prompts(r_.data.path, *tok, po);
    FORGE_CHECK(!prompts_.empty(), r_.data.path, ": no prompts");
    rows_ = plain_rows(prompts_);
    if (!r_.data.eval_path.empty()) {
      eval_prompts_ = read_prompts(r_.data.eval_path, *tok, po);
      eval_rows_ = plain_rows(eval_prompts_);
    }
    if (ctx.mesh.world().rank() == 0)
      std::fprintf(stderr,
                   "forge train: grpo: %lld prompts (%s)%s; %lld steps per epoch, each %lld prompts x %lld completions "
                   "per rank, %lld optimiser step(s) per batch of rollouts\n",
                   (long long)prompts_.size(), r_.data.path.c_str(),
                   eval_prompts_.empty() ? "" : (", " + std::to_string(eval_prompts_.size()) + " held out").c_str(),
                   (long long)steps_per_epoch(), (long long)r_.train.batch_size, (long long)g.num_generations,
                   (long long)g.iterations);
    if (opts_.beta > 0 && !ctx.lora) ref_ = load_frozen_copy(ctx);
    engine_ = make_engine(ctx, std::move(tok));
  }

  int64_t steps_per_epoch() const override {
    const int64_t per = r_.train.batch_size * ctx_.mesh.shape().dp;
    return (int64_t(prompts_.size()) + per - 1) / per * r_.grpo.iterations;
  }

  std::vector<data::Batch> make_step(int64_t step, int64_t epoch) override {
    const int64_t index = step / r_.grpo.iterations;
    if (!samples_ && r_.grpo.samples_every > 0 && ctx_.mesh.world().rank() == 0)  // a resumed run keeps the lines
      samples_ = std::make_unique<MetricsLog>(r_.output.dir + "/samples.jsonl", step);  // of the steps it keeps
    if (batch_.index != index) generate(step, epoch, index);
    fresh_ = step % r_.grpo.iterations == 0;  // the batch's first step: the policy that sampled it
    std::vector<data::Batch> mbs = rollout_micro_batches(batch_, prompts_, r_.train.grad_accum);
    train_tokens_ = 0;
    for (const data::Batch& b : mbs) train_tokens_ += b.tokens;
    train_start_ = Clock::now();  // the step's training part starts
    return mbs;
  }

  double units(const data::Batch& b) const override { return grpo_units(opts_, b.ids.size(0), b.targets); }

  void before_pass(const std::vector<data::Batch>& mbs, bool /*eval*/) override {
    const Device dev = ctx_.model.device();
    old_.clear();
    adv_.clear();
    if (ref_index_ != batch_.index || ref_logps_.size() != mbs.size()) ref_logps_.assign(mbs.size(), Tensor());
    for (const data::Batch& b : mbs) {
      old_.push_back(rollout_logps(batch_, prompts_, b).to(dev));
      std::vector<float> a;
      for (int64_t e : b.examples) a.push_back(batch_.rollouts[size_t(e)].advantage);
      adv_.push_back(Tensor::from_vector(a, {int64_t(a.size())}).to(dev));
    }
    // The reference never changes: its values for this batch of rollouts serve all its iterations.
    if (opts_.beta <= 0 || (ref_index_ == batch_.index && ref_logps_.size() == mbs.size())) return;
    ref_index_ = batch_.index;
    const double temp = r_.grpo.temperature;
    reference_forward(ctx_, ref_, mbs, [this, temp](const Tensor& hidden, const data::Batch& b, int64_t i) {
      const Tensor lp = (ref_.mp ? *ref_.mp : ctx_.mp).token_logps(hidden, b.labels, temp);
      ref_logps_[size_t(i)] = lp;
      return sum(lp);
    });
  }

  Tensor loss_sum(const Tensor& hidden, const data::Batch& b, int64_t i) override {
    const Tensor lp = ctx_.mp.token_logps(hidden, b.labels, r_.grpo.temperature);
    Tensor mask;
    {
      NoGradGuard ng;
      mask = ne(b.labels, Tensor::scalar(-100.0, b.labels.dtype(), b.labels.device())).to(DType::F32);
    }
    const GrpoSums s = grpo_sums(lp, old_[size_t(i)], ref_logps_[size_t(i)], mask, adv_[size_t(i)], opts_);
    {
      NoGradGuard ng;
      const Tensor kl = s.kl.defined() ? s.kl : zeros_like(s.tokens);
      // On the batch's first step the policy is the one that sampled: |lp - old| is the engine's
      // and the trainer's disagreement (0 up to rounding in f32).
      const Tensor gap = fresh_ ? mul(abs(sub(lp.detach(), old_[size_t(i)])), mask) : zeros_like(mask);
      const Tensor v = stack({kl, s.clipped, s.tokens, sum(gap), max(gap)});
      stats_ = stats_.defined() ? cat({add(stats_.narrow(0, 0, 4), v.narrow(0, 0, 4)),
                                      maximum(stats_.narrow(0, 4, 1), v.narrow(0, 4, 1))})
                                : v;
    }
    return s.loss;
  }

  void reset_metrics() override { stats_ = Tensor(); }
  Tensor metric_sums() const override { return stats_; }

  std::string take_metrics(const std::vector<float>& sums, json& line, double /*units*/,
                           const std::string& prefix) override {
    std::vector<double> v(5, 0.0);
    for (size_t k = 0; k < sums.size() && k < v.size(); ++k) v[k] = sums[k];
    stats_ = Tensor();
    const double gap_max = ctx_.mesh.world().reduce({v[4]}, parallel::ReduceOp::Max)[0];
    v = ctx_.mesh.world().sum(v);
    const double tokens = std::max(v[2], 1.0);
    if (opts_.beta > 0) line[prefix + "kl"] = v[0] / tokens;
    line[prefix + "clip_ratio"] = v[1] / tokens;
    if (fresh_) {  // TRL's names
      line["sampling/sampling_logp_difference/mean"] = v[3] / tokens;
      line["sampling/sampling_logp_difference/max"] = gap_max;
    }
    rollout_metrics(line);
    // The logged step's training part (its passes and update, read back), apart from sampling.
    const double train_s = std::chrono::duration<double>(Clock::now() - train_start_).count();
    const std::vector<double> t = ctx_.mesh.world().reduce({train_s}, parallel::ReduceOp::Max);
    line["train_tokens_per_s"] = ctx_.mesh.world().sum({double(train_tokens_)})[0] / std::max(t[0], 1e-9);
    char text[64];
    std::snprintf(text, sizeof text, " reward %.3f", line.value("reward", 0.0));
    return text;
  }

  std::map<std::string, Tensor> state() const override { return rollouts_state(batch_); }
  void load_state(const std::map<std::string, Tensor>& s) override {
    batch_ = rollouts_from_state(s, rewards_.size());
    bool ok = batch_.rollouts.size() % size_t(r_.grpo.num_generations) == 0;
    for (const Rollout& r : batch_.rollouts) ok &= r.prompt >= 0 && r.prompt < int64_t(prompts_.size());
    FORGE_CHECK(ok, "grpo: the checkpoint's rollouts do not fit this recipe's prompts and grpo.num_generations (",
                batch_.rollouts.size(), " completions); resume with the recipe that made them");
  }

  bool has_eval() const override { return !eval_prompts_.empty(); }

  // A group of completions of each held-out prompt (dp ranks take every dp-th), sampled as in
  // training with the same seeds at every eval, and their mean rewards.
  void evaluate(json& line) override {
    const int64_t dp = ctx_.mesh.shape().dp;
    std::vector<int64_t> mine;
    for (int64_t i = ctx_.mesh.dp_rank(); i < int64_t(eval_prompts_.size()); i += dp) mine.push_back(i);
    const SampleOptions so{r_.grpo.num_generations, r_.grpo.max_completion_length, r_.grpo.temperature,
                           uint64_t(r_.train.seed) ^ 0xE7A1ull, -1};
    std::vector<Rollout> rs = generate_on(eval_prompts_, mine, so);
    score_rollouts(rs, eval_prompts_, eval_rows_, rewards_);
    std::vector<double> v(2 + rewards_.size(), 0.0);
    for (const Rollout& r : rs) {
      v[0] += r.reward;
      v[1] += double(r.tokens.size());
      for (size_t f = 0; f < rewards_.size(); ++f) v[2 + f] += r.rewards[f];
    }
    v = ctx_.mesh.world().sum(v);
    const double n = double(eval_prompts_.size() * size_t(r_.grpo.num_generations));
    line["eval_reward"] = v[0] / n;
    line["eval_completions/mean_length"] = v[1] / n;
    for (size_t f = 0; f < rewards_.size(); ++f) line["eval_rewards/" + rewards_[f]->name] = v[2 + f] / n;
  }

  std::string eval_text(const json& line) const override {
    std::string s = "mean reward " + fmt(line.value("eval_reward", 0.0)) + " on " +
                    std::to_string(eval_prompts_.size()) + " held-out prompts x " +
                    std::to_string(r_.grpo.num_generations) + " samples (";
    for (size_t i = 0; i < rewards_.size(); ++i)
      s += (i ? ", " : "") + rewards_[i]->name + " " + fmt(line.value("eval_rewards/" + rewards_[i]->name, 0.0));
    return s + ")";
  }

  void finish(const std::string& metrics_path) override {
    Curve train, eval;
    read_curves(metrics_path, train, eval, "reward");
    const std::string path = r_.output.dir + "/reward_curve.svg";
    write_curve_svg(path, train, eval, "forge train (grpo): mean reward", "reward");
    std::fprintf(stderr, "forge train: reward curve -> %s\n", path.c_str());
  }

 private:
  static std::string fmt(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.3f", v);
    return b;
  }

  // Samples with the weights as they are now: adapters and model in inference mode (no dropout).
  std::vector<Rollout> generate_on(const std::vector<data::Prompt>& ps, const std::vector<int64_t>& which,
                                   const SampleOptions& o) {
    NoGradGuard ng;
    ctx_.model.train(false);
    if (ctx_.lora) ctx_.lora->train(false);
    std::vector<Rollout> rs = sample_rollouts(*engine_, ps, which, o);
    ctx_.model.train(true);
    if (ctx_.lora) ctx_.lora->train(true);
    return rs;
  }

  // Rollout batch `index` (of the run; the `epoch`'s order of prompts): this rank's prompts, their
  // completions, rewards and advantages.
  void generate(int64_t step, int64_t epoch, int64_t index) {
    const int64_t B = r_.train.batch_size, dp = ctx_.mesh.shape().dp, P = int64_t(prompts_.size());
    const int64_t per_epoch = steps_per_epoch() / r_.grpo.iterations, in_epoch = index - epoch * per_epoch;
    std::vector<int64_t> order(static_cast<size_t>(P));
    std::iota(order.begin(), order.end(), 0);
    if (r_.data.shuffle) order = data::seeded_permutation(P, uint64_t(r_.train.seed) * 1000003ull + uint64_t(epoch));
    std::vector<int64_t> mine;
    const int64_t first = in_epoch * B * dp + ctx_.mesh.dp_rank() * B;
    for (int64_t i = first; i < std::min(P, first + B); ++i) mine.push_back(order[size_t(i)]);
    const auto t0 = Clock::now();
    const SampleOptions so{r_.grpo.num_generations, r_.grpo.max_completion_length, r_.grpo.temperature,
                           uint64_t(r_.train.seed), index};
    batch_ = RolloutBatch();
    batch_.index = index;
    batch_.rollouts = generate_on(prompts_, mine, so);
    batch_.gen_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    score_rollouts(batch_.rollouts, prompts_, rows_, rewards_);
    std::vector<float> totals;
    for (const Rollout& r : batch_.rollouts) totals.push_back(r.reward);
    const std::vector<float> adv = group_advantages(totals, r_.grpo.num_generations, r_.grpo.scale_rewards,
                                                    batch_std(totals), &batch_.flat_groups);
    for (size_t i = 0; i < adv.size(); ++i) batch_.rollouts[i].advantage = adv[i];
    write_samples(step);
  }

  // The unbiased std of every rank's rewards of this batch (scale_rewards: batch; else unused).
  double batch_std(const std::vector<float>& totals) const {
    if (r_.grpo.scale_rewards != "batch") return 0;
    double s = 0, s2 = 0;
    for (float v : totals) s += v, s2 += double(v) * v;
    const std::vector<double> t = ctx_.mesh.world().sum({double(totals.size()), s, s2});
    return t[0] > 1 ? std::sqrt(std::max(0.0, (t[2] - t[1] * t[1] / t[0]) / (t[0] - 1))) : 0.0;
  }

  // Every samples_every steps (and the first), the first group of the lead rank's rollouts.
  void write_samples(int64_t step) {
    const int64_t every = r_.grpo.samples_every;
    if (!samples_ || batch_.rollouts.empty()) return;
    const bool due = step == 0 || (step + r_.grpo.iterations) / every > step / every;  // a step of this batch
    if (!due) return;
    for (int64_t k = 0; k < r_.grpo.num_generations; ++k) {
      const Rollout& r = batch_.rollouts[size_t(k)];
      json rw = json::object();
      for (size_t f = 0; f < rewards_.size(); ++f) rw[rewards_[f]->name] = r.rewards[f];
      samples_->write({{"step", step + 1}, {"prompt", prompts_[size_t(r.prompt)].text}, {"completion", r.text},
                       {"reward", r.reward}, {"rewards", rw}, {"advantage", r.advantage},
                       {"tokens", r.tokens.size()}, {"truncated", r.truncated}});
    }
  }

  // The batch of rollouts in use, over every rank: reward mean and std (of the whole batch, as TRL
  // logs it; the total and each function), completion lengths, groups without spread, and the
  // generation rate.
  void rollout_metrics(json& line) const {
    const size_t F = rewards_.size();
    const int64_t G = r_.grpo.num_generations;
    std::vector<double> v(7 + 2 * F, 0.0);  // n, sum r, sum r^2, groups, flat, tokens, truncated, per function
    double longest = 0, shortest = -1e300;   // (shortest as its negation, for one max-reduce)
    const auto& rs = batch_.rollouts;
    v[3] = double(rs.size() / size_t(G));
    for (const Rollout& r : rs) {
      v[0] += 1;
      v[1] += r.reward;
      v[2] += double(r.reward) * r.reward;
      v[5] += double(r.tokens.size());
      v[6] += r.truncated;
      longest = std::max(longest, double(r.tokens.size()));
      shortest = std::max(shortest, -double(r.tokens.size()));
      for (size_t f = 0; f < F; ++f) {
        v[7 + 2 * f] += r.rewards[f];
        v[8 + 2 * f] += double(r.rewards[f]) * r.rewards[f];
      }
    }
    v[4] = double(batch_.flat_groups);
    parallel::Communicator& world = ctx_.mesh.world();
    v = world.sum(v);
    const std::vector<double> most = world.reduce({longest, shortest, batch_.gen_seconds}, parallel::ReduceOp::Max);
    const double n = std::max(v[0], 1.0);
    line["reward"] = v[1] / n;
    line["reward_std"] = v[0] > 1 ? std::sqrt(std::max(0.0, (v[2] - v[1] * v[1] / n) / (n - 1))) : 0.0;
    line["frac_reward_zero_std"] = v[3] > 0 ? v[4] / v[3] : 0.0;
    line["completions/mean_length"] = v[5] / n;
    line["completions/max_length"] = most[0];
    line["completions/min_length"] = -most[1];
    line["completions/clipped_ratio"] = v[6] / n;
    line["gen_tokens_per_s"] = most[2] > 0 ? v[5] / most[2] : 0.0;
    line["gen_s"] = most[2];  // sampling this batch took (the slowest rank)
    for (size_t f = 0; f < F; ++f) {
      const double m = v[7 + 2 * f] / n;
      line["rewards/" + rewards_[f]->name + "/mean"] = m;
      line["rewards/" + rewards_[f]->name + "/std"] =
          v[0] > 1 ? std::sqrt(std::max(0.0, (v[8 + 2 * f] - n * m * m) / (n - 1))) : 0.0;
    }
  }

  MethodContext ctx_;
  const Recipe& r_;
  GrpoOptions opts_;
  std::vector<std::unique_ptr<RewardFunction>> rewards_;
  std::vector<data::Prompt> prompts_, eval_prompts_;
  std::vector<json> rows_, eval_rows_;
  Reference ref_;  // a frozen copy for a full finetune's KL term, else none (the adapters off)
  std::unique_ptr<infer::Engine> engine_;
  RolloutBatch batch_;
  std::unique_ptr<MetricsLog> samples_;  // output.dir/samples.jsonl (lead rank)
  std::vector<Tensor> old_, adv_, ref_logps_;  // per micro-batch of the pass
  Tensor stats_;  // since the last take_metrics: sums of {kl, clipped, tokens, |lp - old|}, then max |lp - old|
  int64_t train_tokens_ = 0;                   // in the current step's micro-batches
  bool fresh_ = false;                         // the step is its batch's first
  int64_t ref_index_ = -1;                     // the batch whose reference values ref_logps_ holds
  Clock::time_point train_start_;
};

}  // namespace

std::unique_ptr<Method> make_grpo(const MethodContext& ctx) { return std::make_unique<Grpo>(ctx); }

}  // namespace forge::train
