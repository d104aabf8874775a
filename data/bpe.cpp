// BPE merges with a heap over adjacent pairs: O(n log n) per word, lowest rank first and, among
// equal ranks, leftmost first (as HF tokenizers).
#include "data/bpe.h"

#include <cstdio>
#include <queue>

#include "core/error.h"
#include "data/unicode.h"

namespace forge::data {
using json = nlohmann::json;

BpeModel::BpeModel(const json& j) {
  FORGE_CHECK(j.value("type", std::string("BPE")) == "BPE", "tokenizer.json: model type '",
              j.value("type", std::string()), "' is not supported (only BPE)");
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
    FORGE_CHECK(!j.contains(k) || j[k].is_null() || j[k].get<std::string>().empty(), "tokenizer.json: model.", k,
                " is not supported");
  FORGE_CHECK(!j.contains("dropout") || j["dropout"].is_null(), "tokenizer.json: BPE dropout is not supported");
  for (auto& [tok, id] : j.at("vocab").items()) {
    FORGE_CHECK(id.is_number_integer(), "tokenizer.json: vocab token '", tok, "' has id ", id.dump(), ", not an integer");
    const int64_t v = id.get<int64_t>();
    FORGE_CHECK(v >= 0 && v < kMaxId, "tokenizer.json: vocab token '", tok, "' has id ", v, ", outside [0, ", kMaxId, ")");
    vocab_[tok] = int32_t(v);
  }
  byte_fallback_ = j.value("byte_fallback", false);
  fuse_unk_ = j.value("fuse_unk", false);
  ignore_merges_ = j.value("ignore_merges", false);
  if (j.contains("unk_token") && j["unk_token"].is_string()) unk_id_ = token_to_id(j["unk_token"].get<std::string>());
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    byte_ids_[b] = token_to_id(name);
  }
  int32_t rank = 0;
  for (auto& m : j.at("merges")) {
    std::string a, b;
    if (m.is_array()) {
      a = m.at(0).get<std::string>();
      b = m.at(1).get<std::string>();
    } else {
      const std::string s = m.get<std::string>();
      const size_t sp = s.find(' ', 1);
      FORGE_CHECK(sp != std::string::npos, "tokenizer.json: merge '", s, "' is not two tokens");
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    }
    const int32_t ia = token_to_id(a), ib = token_to_id(b), ic = token_to_id(a + b);
    FORGE_CHECK(ia >= 0 && ib >= 0 && ic >= 0, "tokenizer.json: merge '", a, " ", b, "' uses tokens not in the vocab");
    merges_.emplace(key(ia, ib), Merge{rank++, ic});
  }
}

int32_t BpeModel::token_to_id(const std::string& token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

void BpeModel::merge_symbols(std::vector<int32_t>& syms) const {
  const int n = int(syms.size());
  if (n < 2) return;
  std::vector<int> prev(n), next(n);
  for (int i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  struct Cand {
    int32_t rank;
    int left;
    int32_t a, b;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto push = [&](int l) {
    if (l < 0 || next[l] < 0) return;
    auto it = merges_.find(key(syms[l], syms[next[l]]));
    if (it != merges_.end()) heap.push({it->second.rank, l, syms[l], syms[next[l]]});
  };
  for (int i = 0; i + 1 < n; ++i) push(i);
  std::vector<bool> alive(n, true);
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    const int r = next[c.left];
    if (!alive[c.left] || r < 0 || syms[c.left] != c.a || syms[r] != c.b) continue;  // stale
    syms[c.left] = merges_.at(key(c.a, c.b)).id;
    alive[r] = false;
    next[c.left] = next[r];
    if (next[r] >= 0) prev[next[r]] = c.left;
    push(prev[c.left]);
    push(c.left);
  }
  std::vector<int32_t> out;
  for (int i = 0; i >= 0; i = next[i]) out.push_back(syms[i]);
  syms.swap(out);
}

void BpeModel::encode_word(const std::string& word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    auto it = vocab_.find(word);
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  const bool cacheable = word.size() < 256;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(word);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> syms;
  bool last_unk = false;
  for (const std::string& ch : utf8_chars(word)) {
    const int32_t id = token_to_id(ch);
    if (id >= 0) {
      syms.push_back(id);
      last_unk = false;
      continue;
    }
    bool all_bytes = byte_fallback_;
    for (unsigned char b : ch) all_bytes = all_bytes && byte_ids_[b] >= 0;
    if (all_bytes) {
      for (unsigned char b : ch) syms.push_back(byte_ids_[b]);
      last_unk = false;
      continue;
    }
    FORGE_CHECK(unk_id_ >= 0, "tokenizer: character '", ch, "' is not in the vocabulary and there is no unk_token");
    if (!(fuse_unk_ && last_unk)) syms.push_back(unk_id_);
    last_unk = true;
  }
  merge_symbols(syms);
  out.insert(out.end(), syms.begin(), syms.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cache_.size() > 200000) cache_.clear();
    cache_.emplace(word, std::move(syms));
  }
}

}  // namespace forge::data
