// Loading a recipe's datasets (see datasets.h).
#include "train/datasets.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "data/packing.h"
#include "data/token_cache.h"

namespace forge::train {
namespace {

void report(const char* what, const std::string& path, const data::ExampleSet& s, const data::DatasetStats& st, bool cached) {
  const bool pairs = st.format == "preference";
  std::fprintf(stderr, "forge train: %s %s: %lld %s, %lld tokens, format %s%s", what, path.c_str(),
               (long long)(pairs ? s.size() / 2 : s.size()), pairs ? "pairs" : "examples", (long long)s.num_tokens(),
               st.format.c_str(), cached ? " (from the token cache)" : "");
  if (st.truncated) std::fprintf(stderr, ", %lld truncated to max_seq_len", (long long)st.truncated);
  if (st.split) std::fprintf(stderr, ", %lld longer than max_seq_len split into windows", (long long)st.split);
  if (st.dropped_empty) std::fprintf(stderr, ", %lld dropped (no response token left)", (long long)st.dropped_empty);
  if (st.skipped) std::fprintf(stderr, ", %lld malformed lines skipped (first: %s)", (long long)st.skipped, st.first_error.c_str());
  std::fprintf(stderr, "\n");
}

}  // namespace

Datasets load_datasets(const Recipe& r, const data::Tokenizer& tok) {
  data::DatasetOptions opt{r.data.format, r.data.max_seq_len, r.data.train_on_prompt, r.data.skip_malformed,
                           r.data.long_examples};
  auto cache = [&](const char* name) { return r.data.cache ? r.output.dir + "/data/" + name : std::string(); };
  Datasets d;
  if (r.train.method == "grpo") {  // prompts, which the method reads (train/grpo.h); checkpoints keep their fingerprint
    opt.format = "grpo prompts";
    opt.max_seq_len = r.grpo.max_prompt_len;
    d.fingerprint = data::dataset_fingerprint(r.data.path, r.model.path, opt);
    d.format = "prompts";
    return d;
  }
  data::DatasetStats st;
  bool cached = false;
  data::ExampleSet all =
      data::prepare_dataset(r.data.path, r.model.path, tok, opt, cache("train.h5"), &st, &cached, &d.fingerprint);
  report("data", r.data.path, all, st, cached);
  d.format = st.format;
  const bool pairs = st.format == "preference";
  FORGE_CHECK(pairs || r.train.method != "dpo", r.data.path, ": train.method dpo needs preference rows ({\"prompt\", ",
              "\"chosen\", \"rejected\"}), this file's rows are ", st.format);
  FORGE_CHECK(!pairs || r.train.method == "dpo", r.data.path,
              ": the rows are preference pairs (chosen / rejected); train them with train.method: dpo");
  if (!r.data.eval_path.empty()) {
    data::DatasetStats est;
    d.eval = data::prepare_dataset(r.data.eval_path, r.model.path, tok, opt, cache("eval.h5"), &est, &cached);
    report("eval data", r.data.eval_path, d.eval, est, cached);
    FORGE_CHECK((est.format == "preference") == pairs, r.data.eval_path, ": its rows are ", est.format,
                ", the training data's ", st.format);
    d.train = std::move(all);
  } else if (r.data.eval_fraction > 0) {
    // A seeded split, the same for every run with this seed; eval keeps at least one example (a
    // preference pair's two sides stay together).
    const int64_t g = pairs ? 2 : 1, n = all.size() / g;
    const int64_t k = std::clamp<int64_t>(int64_t(std::llround(double(n) * r.data.eval_fraction)), 1, n - 1);
    FORGE_CHECK(n >= 2, "data.eval_fraction needs at least 2 examples, ", r.data.path, " has ", n);
    std::vector<int64_t> perm = data::seeded_permutation(n, uint64_t(r.train.seed) ^ 0x5EEDE7A1ull), ev, tr;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < g; ++j) (i < k ? ev : tr).push_back(perm[size_t(i)] * g + j);
    std::sort(ev.begin(), ev.end());
    std::sort(tr.begin(), tr.end());
    d.eval = all.subset(ev);
    d.train = all.subset(tr);
    std::fprintf(stderr, "forge train: eval split: %lld examples held out (data.eval_fraction %g)\n", (long long)k,
                 r.data.eval_fraction);
  } else {
    d.train = std::move(all);
  }
  return d;
}


}  // namespace forge::train
