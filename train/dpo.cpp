// DPO as a training method (see dpo.h).
#include "train/dpo.h"

#include <cstdio>
#include <filesystem>
#include <functional>

#include "core/autograd.h"
#include "core/error.h"
#include "core/file_util.h"
#include "core/hdf5_io.h"
#include "core/ops.h"
#include "models/pretrained.h"
#include "parallel/pipeline.h"

namespace forge::train {

bool dpo_length_normalised(const std::string& loss_type) { return loss_type == "ipo" || loss_type == "simpo"; }

DpoTerms dpo_terms(const Tensor& policy, const Tensor& ref, const DpoOptions& o, const Tensor& lengths) {
  const int64_t P = policy.size(0) / 2;
  auto side = [P](const Tensor& t, int64_t s) { return t.reshape({P, 2}).narrow(1, s, 1).reshape({P}); };
  const Tensor pc = side(policy, 0), pr = side(policy, 1);
  const bool simpo = o.loss_type == "simpo";
  Tensor rc, rr;
  if (!simpo) rc = side(ref, 0), rr = side(ref, 1);
  Tensor logits = simpo ? add(sub(pc, pr), -o.simpo_gamma / o.beta) : sub(sub(pc, pr), sub(rc, rr));
  DpoTerms t;
  if (o.loss_type == "hinge") {
    Tensor m = rsub(1.0, mul(logits, o.beta));
    t.losses = maximum(m, zeros_like(m));
  } else if (o.loss_type == "ipo") {
    t.losses = square(add(logits, -1.0 / (2.0 * o.beta)));
  } else {  // sigmoid, simpo
    const Tensor bl = mul(logits, o.beta);
    t.losses = neg(mul(log_sigmoid(bl), 1.0 - o.label_smoothing));
    if (o.label_smoothing > 0) t.losses = sub(t.losses, mul(log_sigmoid(neg(bl)), o.label_smoothing));
  }
  if (o.rpo_alpha > 0) {  // the chosen reply's NLL per token
    const Tensor per_token = dpo_length_normalised(o.loss_type) ? pc : div(pc, side(lengths, 0));
    t.losses = sub(t.losses, mul(per_token, o.rpo_alpha));
  }
  NoGradGuard ng;
  t.chosen_logps = pc.detach();
  t.rejected_logps = pr.detach();
  t.chosen_rewards = mul(simpo ? t.chosen_logps : sub(t.chosen_logps, rc), o.beta);
  t.rejected_rewards = mul(simpo ? t.rejected_logps : sub(t.rejected_logps, rr), o.beta);
  return t;
}

namespace {

// TRL's metric names, in the order of Dpo::stats_, then the share of pairs whose chosen reply the
// policy itself finds more likely (its preference, as opposed to the reward's, which is 0 at the start).
const char* kStatNames[] = {"rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
                            "logps/chosen", "logps/rejected", "logps/accuracies"};
constexpr int64_t kStats = 7;

class Dpo : public Method {
 public:
  explicit Dpo(const MethodContext& ctx) : ctx_(ctx) {
    const Recipe::Dpo& d = ctx.recipe.dpo;
    opts_ = DpoOptions{d.loss_type, d.beta, d.label_smoothing, d.simpo_gamma, d.rpo_alpha};
    if (opts_.loss_type != "simpo" && !ctx.lora && !d.precompute_ref) ref_model_ = load_frozen_copy(ctx);
  }

  // dpo.precompute_ref: every example's reference log-probability, computed once from the starting
  // weights (or read back from output.dir/data/ref_logps.h5, which a resumed run needs).
  void before_training(const Datasets& data, bool resumed) override {
    if (!ctx_.recipe.dpo.precompute_ref || opts_.loss_type == "simpo") return;
    const Recipe& r = ctx_.recipe;
    const std::string path = r.output.dir + "/data/ref_logps.h5";
    const Hdf5Attrs key{{"data", data.fingerprint},
                        {"eval_examples", std::to_string(data.eval.size())},
                        {"model", std::filesystem::absolute(r.model.path).lexically_normal().string()},
                        {"dtype", r.model.dtype},
                        {"per_token", dpo_length_normalised(opts_.loss_type) ? "1" : "0"}};
    auto intact = [&] {  // a torn or altered cache is recomputed, never handed to libhdf5
      try {
        check_hdf5_seal(path);
        return true;
      } catch (const Error&) {
        return false;
      }
    };
    if (file_exists(path) && intact() && load_hdf5_attrs(path) == key) {
      if (ctx_.mp.last_stage()) {
        auto t = load_hdf5(path);
        table_[0] = t.at("train").to_float_vector();
        table_[1] = t.at("eval").to_float_vector();
      }
      return;
    }
    FORGE_CHECK(!resumed || ctx_.lora, path, ": missing or made for other data or weights, and this full finetune "
                "resumes from trained weights; the reference must come from the starting ones (start over, or "
                "set dpo.precompute_ref: false)");
    table_[0] = reference_of(data.train);
    table_[1] = reference_of(data.eval);
    const bool writer = ctx_.mp.reports() && ctx_.mesh.dp_rank() == 0;  // one rank holding the values
    if (writer) {
      std::filesystem::create_directories(r.output.dir + "/data");
      save_hdf5(path,
                {{"train", Tensor::from_vector(table_[0], {int64_t(table_[0].size())})},
                 {"eval", Tensor::from_vector(table_[1], {int64_t(table_[1].size())})}},
                key);
      std::fprintf(stderr, "forge train: reference log-probabilities of %lld examples -> %s\n",
                   (long long)(table_[0].size() + table_[1].size()), path.c_str());
    }
  }

  int64_t group() const override { return 2; }
  double units(const data::Batch& b) const override { return double(b.ids.size(0) / 2); }

  void before_pass(const std::vector<data::Batch>& mbs, bool eval) override {
    ref_.assign(mbs.size(), Tensor());
    if (opts_.loss_type == "simpo") return;
    if (ctx_.recipe.dpo.precompute_ref) {  // looked up on the last stage, which alone needs them
      if (!ctx_.mp.last_stage()) return;
      const std::vector<float>& table = table_[eval ? 1 : 0];
      for (size_t i = 0; i < mbs.size(); ++i) {
        std::vector<float> v;
        for (int64_t e : mbs[i].examples) v.push_back(table.at(size_t(e)));
        ref_[i] = Tensor::from_vector(v, {int64_t(v.size())}).to(ctx_.model.device());
      }
      return;
    }
    reference_pass(mbs, [this](int64_t i, const Tensor& lp, const data::Batch&) { ref_[size_t(i)] = lp; });
  }

  Tensor loss_sum(const Tensor& hidden, const data::Batch& b, int64_t i) override {
    const DpoTerms t = dpo_terms(logps(ctx_.mp, hidden, b), ref_.empty() ? Tensor() : ref_[size_t(i)], opts_,
                                 opts_.rpo_alpha > 0 && !dpo_length_normalised(opts_.loss_type) ? lengths(b) : Tensor());
    {
      NoGradGuard ng;
      const Tensor won = gt(t.chosen_rewards, t.rejected_rewards).to(DType::F32);
      Tensor s = stack({sum(t.chosen_rewards), sum(t.rejected_rewards), sum(won),
                        sum(sub(t.chosen_rewards, t.rejected_rewards)), sum(t.chosen_logps), sum(t.rejected_logps),
                        sum(gt(t.chosen_logps, t.rejected_logps).to(DType::F32))});
      stats_ = stats_.defined() ? add(stats_, s) : s;
    }
    return sum(t.losses);
  }

  void reset_metrics() override { stats_ = Tensor(); }

  Tensor metric_sums() const override { return ctx_.mp.reports() ? stats_ : Tensor(); }

  std::string take_metrics(const std::vector<float>& sums, nlohmann::json& line, double units,
                           const std::string& prefix) override {
    std::vector<double> v(kStats, 0.0);
    for (size_t k = 0; k < sums.size() && k < v.size(); ++k) v[k] = sums[k];
    stats_ = Tensor();
    v = ctx_.mesh.world().sum(v);
    for (int64_t k = 0; k < kStats; ++k) line[prefix + kStatNames[k]] = units > 0 ? v[size_t(k)] / units : 0.0;
    char text[64];
    std::snprintf(text, sizeof text, " acc %.2f margin %.3f", units > 0 ? v[2] / units : 0.0, units > 0 ? v[3] / units : 0.0);
    return text;
  }

 private:
  // The reference's row log-probabilities of micro-batches, each handed to `take` on the last stage.
  // (The base: the same weights with the adapters off, or, precomputing, the starting weights.)
  void reference_pass(const std::vector<data::Batch>& mbs,
                      const std::function<void(int64_t, const Tensor&, const data::Batch&)>& take) {
    Head head = [this, &take](const Tensor& hidden, const data::Batch& b, int64_t i) {
      const Tensor lp = logps(ref_model_.mp ? *ref_model_.mp : ctx_.mp, hidden, b);
      take(i, lp, b);
      return sum(lp);
    };
    reference_forward(ctx_, ref_model_, mbs, head);
  }

  // Every example's reference log-probability (on the last stage; empty elsewhere). Every dp
  // replica runs the whole set: once per run, and no gather is needed.
  std::vector<float> reference_of(const data::ExampleSet& set) {
    std::vector<float> out(size_t(set.size()), 0.0f);
    if (set.size() == 0) return out;
    const Recipe& r = ctx_.recipe;
    data::Batcher batcher(set, r.data.max_seq_len, 2 * r.train.batch_size, false, false, 0, 2);
    std::vector<data::Batch> mbs;
    for (int64_t i = 0; i < batcher.num_batches(0); ++i) {
      data::Batch b = batcher.batch(0, i);
      if (!ctx_.model.device().is_cpu()) {
        b.labels = b.labels.to(ctx_.model.device());
        b.positions = b.positions.to(ctx_.model.device());
      }
      mbs.push_back(std::move(b));
    }
    reference_pass(mbs, [&out](int64_t, const Tensor& lp, const data::Batch& b) {
      const std::vector<float> v = lp.to_float_vector();
      for (size_t k = 0; k < v.size(); ++k) out[size_t(b.examples[k])] = v[k];
    });
    return out;
  }

  Tensor logps(const parallel::ModelParallel& mp, const Tensor& hidden, const data::Batch& b) const {
    Tensor lp = mp.row_logps(hidden, b.labels);
    return dpo_length_normalised(opts_.loss_type) ? div(lp, lengths(b)) : lp;
  }

  static Tensor lengths(const data::Batch& b) {  // each row's reply tokens
    NoGradGuard ng;
    return sum(ne(b.labels, Tensor::scalar(-100.0, b.labels.dtype(), b.labels.device())).to(DType::F32), {1});
  }

  MethodContext ctx_;
  DpoOptions opts_;
  Reference ref_model_;  // a frozen copy (full finetune), else none
  std::vector<Tensor> ref_;  // the reference's row log-probabilities per micro-batch of the pass
  std::vector<float> table_[2];  // dpo.precompute_ref: per example of the training [0] and eval [1] sets
  Tensor stats_;             // [kStats] sums since the last take_metrics (last stage)
};

}  // namespace

std::unique_ptr<Method> make_dpo(const MethodContext& ctx) { return std::make_unique<Dpo>(ctx); }

}  // namespace forge::train
