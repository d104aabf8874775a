// Builds a small byte-level BPE tokenizer (Llama 3 style: its split regex, special tokens and
// chat template) by training merges on a text, so random test models come with real
// tokenizer.json / tokenizer_config.json files.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace forge::data {

struct TokenizerFiles {
  nlohmann::json tokenizer;  // tokenizer.json
  nlohmann::json config;     // tokenizer_config.json
  int64_t bos_id, eos_id, eot_id;
};

// vocab_size: total ids (bytes + merges + special tokens; unused ids become reserved specials).
// corpus: training text (empty: a built-in English/code sample).
TokenizerFiles make_byte_level_tokenizer(int64_t vocab_size, const std::string& corpus = "");
// Writes dir/tokenizer.json and dir/tokenizer_config.json (atomically).
void save_tokenizer_files(const TokenizerFiles& t, const std::string& dir);

// The Llama 3 chat template, used by generated tokenizers.
extern const char* kLlama3ChatTemplate;

}  // namespace forge::data
