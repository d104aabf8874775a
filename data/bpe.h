// The BPE model of tokenizer.json: vocabulary, ranked merges, byte fallback, unknown token.
// Turns one pre-tokenized word into ids by applying merges lowest rank first.
#pragma once
#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <vector>

namespace forge::data {

class BpeModel {
 public:
  static constexpr int64_t kMaxId = int64_t(1) << 24;  // larger ids are refused (Gemma 3 has 262k)
  BpeModel() = default;
  // j: the "model" object of tokenizer.json (type BPE).
  explicit BpeModel(const nlohmann::json& j);
  void encode_word(const std::string& word, std::vector<int32_t>& out) const;
  int32_t token_to_id(const std::string& token) const;  // -1 when absent
  size_t vocab_size() const { return vocab_.size(); }
  const std::unordered_map<std::string, int32_t>& vocab() const { return vocab_; }

 private:
  struct Merge {
    int32_t rank, id;
  };
  static uint64_t key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
  void merge_symbols(std::vector<int32_t>& syms) const;

  std::unordered_map<std::string, int32_t> vocab_;
  std::unordered_map<uint64_t, Merge> merges_;
  int32_t unk_id_ = -1;
  bool byte_fallback_ = false, fuse_unk_ = false, ignore_merges_ = false;
  int32_t byte_ids_[256];
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace forge::data
