// The text stages of tokenizer.json around the BPE model: normalizers, pre-tokenizers and
// decoders, each read from its JSON object. Unsupported types are errors naming them.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/unicode.h"

namespace forge::data {

// A string pattern of tokenizer.json: {"String": "..."} (literal) or {"Regex": "..."}.
struct Pattern {
  std::string literal;
  std::shared_ptr<Regex> regex;
  static Pattern from_json(const nlohmann::json& j, const char* where);
  static Pattern of_literal(std::string s) {
    Pattern p;
    p.literal = std::move(s);
    return p;
  }
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view s) const;
  std::string replace_all(std::string_view s, const std::string& with) const;
};

struct NormalizerStep {
  std::string type;  // NFC NFD NFKC NFKD Lowercase Prepend Replace Strip
  std::string text;  // Prepend: prefix; Replace: content
  Pattern pattern;   // Replace
  bool left = false, right = false;  // Strip
};
std::vector<NormalizerStep> parse_normalizer(const nlohmann::json& j);
std::string normalize(const std::vector<NormalizerStep>& steps, std::string s);

struct PreTokenizerStep {
  std::string type;  // Split ByteLevel Metaspace Digits WhitespaceSplit Whitespace
  Pattern pattern;
  std::shared_ptr<Regex> regex;  // ByteLevel (use_regex), Whitespace
  std::string behavior;          // Split: removed isolated mergedwithprevious mergedwithnext contiguous
  bool invert = false;
  bool add_prefix_space = false;  // ByteLevel
  std::string replacement;        // Metaspace
  std::string prepend_scheme;     // Metaspace: always first never
  bool split = true;              // Metaspace
  bool individual_digits = false;
};
std::vector<PreTokenizerStep> parse_pre_tokenizer(const nlohmann::json& j);
// first_section: this text is the first piece of the input (Metaspace's "first" scheme).
std::vector<std::string> pre_tokenize(const std::vector<PreTokenizerStep>& steps, const std::string& text,
                                      bool first_section);

struct DecoderStep {
  std::string type;  // ByteLevel Replace ByteFallback Fuse Strip Metaspace
  Pattern pattern;
  std::string content;
  int start = 0, stop = 0;
  bool prepend = true;  // Metaspace: strip the first token's leading space
};
std::vector<DecoderStep> parse_decoder(const nlohmann::json& j);
// Token strings in, byte strings out (not yet checked as UTF-8).
std::vector<std::string> run_decoders(const std::vector<DecoderStep>& steps, std::vector<std::string> tokens);

}  // namespace forge::data
