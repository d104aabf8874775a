// HDF5 token cache (see token_cache.h).
#include "data/token_cache.h"

#include <algorithm>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/file_util.h"
#include "core/hdf5_io.h"

namespace forge::data {
namespace {
constexpr const char* kCacheVersion = "forge-tokens-2";

void fnv1a(uint64_t& h, const char* p, size_t n) {
  for (size_t i = 0; i < n; ++i) h = (h ^ uint8_t(p[i])) * 0x100000001b3ull;
}

void hash_file(uint64_t& h, const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return fnv1a(h, "<absent>", 8);
  char buf[1 << 16];
  while (f.read(buf, sizeof buf) || f.gcount() > 0) fnv1a(h, buf, size_t(f.gcount()));
}
}  // namespace

std::string dataset_fingerprint(const std::string& data_path, const std::string& model_dir, const DatasetOptions& opt) {
  uint64_t h = 0xcbf29ce484222325ull;
  hash_file(h, data_path);
  hash_file(h, model_dir + "/tokenizer.json");
  hash_file(h, model_dir + "/tokenizer_config.json");
  const std::string settings = std::string(kCacheVersion) + "|" + opt.format + "|" + std::to_string(opt.max_seq_len) +
                               "|" + std::to_string(opt.train_on_prompt) + "|" + std::to_string(opt.skip_malformed) +
                               "|" + opt.long_examples;
  fnv1a(h, settings.data(), settings.size());
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
  return hex;
}

void save_example_set(const std::string& path, const ExampleSet& set, const std::string& fingerprint,
                      const DatasetStats& stats, const std::string& source) {
  std::map<std::string, Tensor> t;
  t["tokens"] = Tensor::from_vector(set.tokens, {set.num_tokens()});
  t["mask"] = Tensor::from_vector(set.mask, {set.num_tokens()});
  t["offsets"] = Tensor::from_vector(set.offsets, {int64_t(set.offsets.size())});
  Hdf5Attrs a{{"fingerprint", fingerprint}, {"version", kCacheVersion}, {"source", source}, {"format", stats.format},
              {"examples", std::to_string(set.size())}, {"skipped_lines", std::to_string(stats.skipped)},
              {"truncated", std::to_string(stats.truncated)}, {"split", std::to_string(stats.split)},
              {"dropped_empty", std::to_string(stats.dropped_empty)}};
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir);
  save_hdf5(path, t, a);
}

bool load_example_set(const std::string& path, const std::string& fingerprint, ExampleSet& out, DatasetStats* stats) {
  if (!file_exists(path)) return false;
  try {
    check_hdf5_seal(path);  // a torn or altered cache never reaches libhdf5
    Hdf5Attrs a = load_hdf5_attrs(path);
    if (a["fingerprint"] != fingerprint || a["version"] != kCacheVersion) return false;
    auto t = load_hdf5(path);
    ExampleSet s;
    s.tokens = t.at("tokens").to_vector<int32_t>();
    s.mask = t.at("mask").to_vector<uint8_t>();
    s.offsets = t.at("offsets").to_vector<int64_t>();
    if (s.tokens.size() != s.mask.size() || s.offsets.empty() || s.offsets[0] != 0 ||
        s.offsets.back() != int64_t(s.tokens.size()) || !std::is_sorted(s.offsets.begin(), s.offsets.end()))
      return false;
    if (stats) {
      stats->format = a["format"];
      stats->examples = s.size();
      stats->skipped = std::stoll(a["skipped_lines"]);
      stats->truncated = std::stoll(a["truncated"]);
      stats->split = std::stoll(a["split"]);
      stats->dropped_empty = std::stoll(a["dropped_empty"]);
    }
    out = std::move(s);
    return true;
  } catch (const std::exception&) {
    return false;  // unreadable or foreign: rebuild it
  }
}

ExampleSet prepare_dataset(const std::string& data_path, const std::string& model_dir, const Tokenizer& tok,
                           const DatasetOptions& opt, const std::string& cache_path, DatasetStats* stats,
                           bool* from_cache, std::string* fingerprint) {
  ExampleSet set;
  const std::string fp = dataset_fingerprint(data_path, model_dir, opt);
  if (fingerprint) *fingerprint = fp;
  if (!cache_path.empty() && load_example_set(cache_path, fp, set, stats)) {
    if (from_cache) *from_cache = true;
    return set;
  }
  DatasetStats st;
  set = read_dataset(data_path, tok, opt, &st);
  if (!cache_path.empty()) save_example_set(cache_path, set, fp, st, data_path);
  if (stats) *stats = st;
  if (from_cache) *from_cache = false;
  return set;
}

}  // namespace forge::data
