// GRPO's rollouts (see rollouts.h).
#include "train/rollouts.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace forge::train {
namespace {

uint64_t mix(uint64_t h, uint64_t v) {  // splitmix64 of the running hash and the next value
  uint64_t z = h ^ (v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2));
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::string prompt_head(const data::Prompt& p) {  // for error messages
  std::string s = p.text.substr(0, 80);
  std::replace(s.begin(), s.end(), '\n', ' ');
  return "'" + s + (p.text.size() > 80 ? "...'" : "'");
}

}  // namespace

std::vector<Rollout> sample_rollouts(infer::Engine& engine, const std::vector<data::Prompt>& prompts,
                                     const std::vector<int64_t>& which, const SampleOptions& o) {
  engine.reset_prefix_cache();
  std::vector<Rollout> out(which.size() * size_t(o.n));
  std::vector<std::string> reasons(out.size());
  for (size_t i = 0; i < which.size(); ++i) {
    const data::Prompt& p = prompts[size_t(which[i])];
    for (int64_t k = 0; k < o.n; ++k) {
      const size_t at = i * size_t(o.n) + size_t(k);
      infer::Request req;
      req.prompt = p.ids;
      req.max_tokens = std::min<int64_t>(o.max_tokens, engine.max_model_len() - int64_t(p.ids.size()));
      req.sampling.temperature = o.temperature;
      req.seed = mix(mix(mix(uint64_t(o.seed), uint64_t(o.batch_index)), uint64_t(which[i])), uint64_t(k));
      req.logprobs = 0;
      req.logprob_temperature = o.temperature > 0 ? o.temperature : 1.0;
      req.skip_special_tokens = true;
      const std::string why = req.max_tokens < 1 ? "no room for a completion" : engine.check(req);
      FORGE_CHECK(why.empty(), "grpo: prompt ", which[i] + 1, " ", prompt_head(p), ": ", why);
      Rollout& r = out[at];
      r.prompt = which[i];
      engine.add(std::move(req), [&r, &reasons, at](const infer::Event& ev) {
        r.tokens.insert(r.tokens.end(), ev.tokens.begin(), ev.tokens.end());
        for (const auto& lp : ev.logprobs) r.logps.push_back(lp.logprob);
        r.text += ev.text;
        if (ev.finished) reasons[at] = ev.finish_reason;
      });
    }
  }
  engine.run_until_idle();
  for (size_t i = 0; i < out.size(); ++i) {
    const Rollout& r = out[i];
    FORGE_CHECK(reasons[i] == "stop" || reasons[i] == "length", "grpo: sampling prompt ", r.prompt + 1, " ",
                prompt_head(prompts[size_t(r.prompt)]), " ended with '", reasons[i], "'");
    FORGE_CHECK(!r.tokens.empty() && r.logps.size() == r.tokens.size(), "grpo: prompt ", r.prompt + 1,
                ": the engine returned ", r.tokens.size(), " tokens and ", r.logps.size(), " log-probabilities");
    out[i].truncated = reasons[i] == "length";
  }
  return out;
}

void score_rollouts(std::vector<Rollout>& rs, const std::vector<data::Prompt>& prompts,
                    const std::vector<nlohmann::json>& rows, const std::vector<std::unique_ptr<RewardFunction>>& fns) {
  std::vector<Completion> cs;
  for (const Rollout& r : rs) cs.push_back({&rows[size_t(r.prompt)], prompts[size_t(r.prompt)].text, r.text});
  for (Rollout& r : rs) {
    r.rewards.assign(fns.size(), 0.0f);
    r.reward = 0;
  }
  for (size_t f = 0; f < fns.size(); ++f) {
    if (cs.empty()) break;
    const std::vector<double> v = fns[f]->score(cs);
    FORGE_CHECK(v.size() == rs.size(), "grpo: reward '", fns[f]->name, "' gave ", v.size(), " values for ", rs.size(),
                " completions");
    for (size_t i = 0; i < rs.size(); ++i) {
      FORGE_CHECK(std::isfinite(v[i]), "grpo: reward '", fns[f]->name, "' is ", v[i], " for a completion of prompt ",
                  rs[i].prompt + 1, " ", prompt_head(prompts[size_t(rs[i].prompt)]), " (rewards must be finite numbers)");
      rs[i].rewards[f] = float(v[i]);
      rs[i].reward += float(fns[f]->weight * v[i]);
    }
  }
}

std::vector<data::Batch> rollout_micro_batches(const RolloutBatch& b, const std::vector<data::Prompt>& prompts,
                                               int64_t n_mb) {
  const int64_t n = int64_t(b.rollouts.size());
  const int64_t per = std::max<int64_t>(1, (n + n_mb - 1) / n_mb);
  std::vector<data::Batch> out;
  for (int64_t first = 0; first < n; first += per) {
    const int64_t B = std::min(per, n - first);
    int64_t T = 1;
    for (int64_t i = first; i < first + B; ++i) {
      const Rollout& r = b.rollouts[size_t(i)];
      T = std::max<int64_t>(T, int64_t(prompts[size_t(r.prompt)].ids.size() + r.tokens.size()));
    }
    data::Batch mb;
    mb.ids = Tensor::zeros({B, T}, DType::I64);
    mb.labels = Tensor::full({B, T}, -100, DType::I64);
    mb.positions = Tensor::zeros({B, T}, DType::I64);
    int64_t* ids = mb.ids.data<int64_t>();
    int64_t* labels = mb.labels.data<int64_t>();
    int64_t* pos = mb.positions.data<int64_t>();
    for (int64_t row = 0; row < B; ++row) {
      const Rollout& r = b.rollouts[size_t(first + row)];
      const std::vector<int64_t>& p = prompts[size_t(r.prompt)].ids;
      const int64_t P = int64_t(p.size()), L = P + int64_t(r.tokens.size());
      for (int64_t t = 0; t < L; ++t) {
        ids[row * T + t] = t < P ? p[size_t(t)] : r.tokens[size_t(t - P)];
        pos[row * T + t] = t;
      }
      for (int64_t t = P - 1; t + 1 < L; ++t) labels[row * T + t] = r.tokens[size_t(t + 1 - P)];
      mb.examples.push_back(first + row);
      mb.targets += int64_t(r.tokens.size());
      mb.tokens += L;
    }
    out.push_back(std::move(mb));
  }
  return out;
}

Tensor rollout_logps(const RolloutBatch& b, const std::vector<data::Prompt>& prompts, const data::Batch& mb) {
  const int64_t B = mb.labels.size(0), T = mb.labels.size(1);
  std::vector<float> v(size_t(B * T), 0.0f);
  for (int64_t row = 0; row < B; ++row) {
    const Rollout& r = b.rollouts[size_t(mb.examples[size_t(row)])];
    const int64_t P = int64_t(prompts[size_t(r.prompt)].ids.size());
    for (size_t i = 0; i < r.logps.size(); ++i) v[size_t(row * T + P - 1) + i] = r.logps[i];
  }
  return Tensor::from_vector(v, {B, T});
}

std::map<std::string, Tensor> rollouts_state(const RolloutBatch& b) {
  std::map<std::string, Tensor> s;
  s["index"] = Tensor::from_vector(std::vector<int64_t>{b.index, b.flat_groups}, {2});
  s["gen_seconds"] = Tensor::from_vector(std::vector<float>{float(b.gen_seconds)}, {1});
  if (b.rollouts.empty()) return s;
  std::vector<int64_t> meta, tokens;  // per rollout: prompt, completion length, truncated
  std::vector<float> logps, rewards, values;  // values: reward, advantage
  for (const Rollout& r : b.rollouts) {
    meta.insert(meta.end(), {r.prompt, int64_t(r.tokens.size()), int64_t(r.truncated)});
    tokens.insert(tokens.end(), r.tokens.begin(), r.tokens.end());
    logps.insert(logps.end(), r.logps.begin(), r.logps.end());
    rewards.insert(rewards.end(), r.rewards.begin(), r.rewards.end());
    values.insert(values.end(), {r.reward, r.advantage});
  }
  const int64_t n = int64_t(b.rollouts.size());
  s["meta"] = Tensor::from_vector(meta, {n, 3});
  s["tokens"] = Tensor::from_vector(tokens, {int64_t(tokens.size())});
  s["logps"] = Tensor::from_vector(logps, {int64_t(logps.size())});
  s["values"] = Tensor::from_vector(values, {n, 2});
  if (!rewards.empty()) s["rewards"] = Tensor::from_vector(rewards, {int64_t(rewards.size())});
  return s;
}

RolloutBatch rollouts_from_state(const std::map<std::string, Tensor>& s, size_t num_rewards) {
  RolloutBatch b;
  auto it = s.find("index");
  if (it == s.end()) return b;  // a checkpoint made before the first rollouts
  const std::vector<int64_t> head = it->second.to_vector<int64_t>();
  b.index = head.at(0);
  b.flat_groups = head.at(1);
  b.gen_seconds = s.at("gen_seconds").item();
  if (!s.count("meta")) return b;
  const std::vector<int64_t> meta = s.at("meta").to_vector<int64_t>(), tokens = s.at("tokens").to_vector<int64_t>();
  const std::vector<float> logps = s.at("logps").to_float_vector(), values = s.at("values").to_float_vector();
  const std::vector<float> rewards = s.count("rewards") ? s.at("rewards").to_float_vector() : std::vector<float>();
  const size_t n = meta.size() / 3;
  FORGE_CHECK(rewards.size() == n * num_rewards, "grpo: the checkpoint's rollouts have ", rewards.size(),
              " reward values for ", n, " completions and ", num_rewards, " reward functions (were grpo.rewards changed?)");
  size_t at = 0;
  for (size_t i = 0; i < n; ++i) {
    Rollout r;
    r.prompt = meta[3 * i];
    const size_t len = size_t(meta[3 * i + 1]);
    r.truncated = meta[3 * i + 2] != 0;
    FORGE_CHECK(at + len <= tokens.size() && at + len <= logps.size(), "grpo: the checkpoint's rollouts are cut short");
    r.tokens.assign(tokens.begin() + long(at), tokens.begin() + long(at + len));
    r.logps.assign(logps.begin() + long(at), logps.begin() + long(at + len));
    at += len;
    r.rewards.assign(rewards.begin() + long(i * num_rewards), rewards.begin() + long((i + 1) * num_rewards));
    r.reward = values[2 * i];
    r.advantage = values[2 * i + 1];
    b.rollouts.push_back(std::move(r));
  }
  return b;
}

}  // namespace forge::train
