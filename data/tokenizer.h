// A Hugging Face tokenizer read from `tokenizer.json` (+ `tokenizer_config.json`): added and
// special tokens, normalizer, pre-tokenizer, BPE (byte-level or SentencePiece-style with byte
// fallback), post-processor and decoder, with the semantics of HF tokenizers.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "data/bpe.h"
#include "data/text_pipeline.h"

namespace forge::data {

struct AddedToken {
  std::string content;
  int64_t id = 0;
  bool special = false, lstrip = false, rstrip = false, single_word = false, normalized = false;
};

class Tokenizer {
 public:
  static constexpr int64_t kMaxVocab = BpeModel::kMaxId;
  // Reads dir/tokenizer.json and, when present, dir/tokenizer_config.json.
  static std::shared_ptr<Tokenizer> from_dir(const std::string& dir);
  Tokenizer(const nlohmann::json& tokenizer_json, const nlohmann::json& config, const std::string& where);

  // add_special_tokens: apply the post-processor (e.g. prepend BOS). Special tokens written in
  // the text are always recognised, as in transformers.
  std::vector<int64_t> encode(std::string_view text, bool add_special_tokens = true) const;
  // Lossy UTF-8 text. Cleans up tokenization spaces (" ." -> ".") when tokenizer_config.json
  // asks for it and `cleanup` allows it, as transformers does.
  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens = false, bool cleanup = true) const;
  // The decoders' byte output, before UTF-8 checking and clean-up (for streaming).
  std::string decode_bytes(const int64_t* ids, size_t n, bool skip_special_tokens) const;

  int64_t token_to_id(const std::string& token) const;  // -1 when absent
  std::string id_to_token(int64_t id) const;            // "" when absent
  int64_t vocab_size() const { return int64_t(id_to_token_.size()); }
  bool is_special(int64_t id) const { return special_ids_.count(id) > 0; }

  // From tokenizer_config.json (empty / -1 when not set).
  const std::string& bos_token() const { return bos_token_; }
  const std::string& eos_token() const { return eos_token_; }
  int64_t bos_id() const { return token_to_id(bos_token_); }
  int64_t eos_id() const { return token_to_id(eos_token_); }
  const std::string& chat_template() const { return chat_template_; }
  void set_chat_template(std::string t) { chat_template_ = std::move(t); }
  const nlohmann::json& config() const { return config_; }

 private:
  struct Piece {
    std::string_view text;
    int64_t added_id;  // -1: ordinary text
  };
  void read_added_tokens(const nlohmann::json& list);
  void index_tokens();
  void read_post_processor(const nlohmann::json& p);
  std::vector<Piece> split_added(std::string_view text) const;
  void encode_text(std::string_view text, bool first_section, std::vector<int64_t>& out) const;
  void post_process(std::vector<int64_t>& ids) const;

  std::unique_ptr<BpeModel> model_;
  std::vector<AddedToken> added_;
  std::unordered_map<std::string, int64_t> added_ids_;
  std::vector<std::string> id_to_token_;
  std::unordered_set<int64_t> special_ids_;
  std::vector<NormalizerStep> normalizer_;
  std::vector<PreTokenizerStep> pre_tokenizer_;
  std::vector<DecoderStep> decoder_;
  std::vector<int64_t> prefix_ids_, suffix_ids_;  // added around the text by the post-processor
  // Trie over added-token bytes for leftmost-longest matching.
  struct TrieNode {
    std::unordered_map<unsigned char, int> next;
    int token = -1;  // index into added_
  };
  std::vector<TrieNode> trie_;
  nlohmann::json config_;
  std::string bos_token_, eos_token_, chat_template_;
  bool cleanup_spaces_ = false;
};

// Streams text as tokens arrive without ever emitting a broken UTF-8 sequence: text is held back
// while the decoded tail is an incomplete sequence (or a replacement character).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool skip_special_tokens = false)
      : tok_(tok), skip_(skip_special_tokens) {}
  std::string push(int64_t id);  // the newly completed text, possibly ""
  std::string finish();          // whatever is still held back

 private:
  const Tokenizer& tok_;
  bool skip_;
  std::vector<int64_t> ids_;
  size_t prefix_ = 0, read_ = 0;
};

}  // namespace forge::data
