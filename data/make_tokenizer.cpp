// Byte-level BPE training for generated test tokenizers (see make_tokenizer.h).
#include "data/make_tokenizer.h"

#include <algorithm>
#include <map>

#include "core/error.h"
#include "core/file_util.h"
#include "data/unicode.h"

namespace forge::data {
using json = nlohmann::json;

const char* kLlama3ChatTemplate =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + "
    "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

namespace {
const char* kSplitRegex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const char* kCorpus =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she "
    "saw a big, red ball. She wanted to play with it, but it was too high. Lily asked her mom for help. Her mom "
    "said, \"Let's find a stick to get the ball down.\" They looked and looked, and then they found a long stick. "
    "Lily was very happy. She said thank you to her mom and they played with the ball all day long. The sun was "
    "warm and the birds were singing. A friendly dog came to play with them too. The dog ran fast and the girl "
    "laughed. When it was time to go home, Lily was tired but happy. She hugged her mom and said, \"I love you.\"\n"
    "The quick brown fox jumps over the lazy dog. What is the answer? The answer is 42. Please tell me a story "
    "about a cat and a dog who become friends. Sure! Here is a short story about friendship and kindness.\n"
    "def add(a, b):\n    return a + b\n\nfor i in range(10):\n    print(i, add(i, 1))\n"
    "int main() {\n  int total = 0;\n  for (int i = 0; i < 100; ++i) total += i;\n  return total;\n}\n"
    "You are a helpful assistant. The user asks a question and the assistant answers it clearly and politely.\n";
}  // namespace

TokenizerFiles make_byte_level_tokenizer(int64_t vocab_size, const std::string& corpus_in) {
  const std::vector<std::string> specials = {"<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                                             "<|end_header_id|>", "<|eot_id|>"};
  FORGE_CHECK(vocab_size >= 256 + int64_t(specials.size()), "a byte-level tokenizer needs a vocab of at least ",
              256 + specials.size(), ", got ", vocab_size);
  const std::string corpus = corpus_in.empty() ? kCorpus : corpus_in;

  // Words (byte-level alphabet) with their counts.
  Regex split(kSplitRegex);
  std::map<std::vector<std::string>, int64_t> words;
  for (auto [b, e] : split.find_all(corpus)) {
    std::vector<std::string> syms;
    for (size_t i = b; i < e; ++i) syms.push_back(byte_to_unicode(static_cast<unsigned char>(corpus[i])));
    ++words[syms];
  }
  json vocab = json::object();
  std::vector<std::string> id_to_tok;
  for (int b = 0; b < 256; ++b) {
    vocab[byte_to_unicode(static_cast<unsigned char>(b))] = b;
    id_to_tok.push_back(byte_to_unicode(static_cast<unsigned char>(b)));
  }
  json merges = json::array();
  const int64_t max_merges = vocab_size - 256 - int64_t(specials.size());
  std::vector<std::pair<std::vector<std::string>, int64_t>> w(words.begin(), words.end());
  while (int64_t(merges.size()) < max_merges) {
    std::map<std::pair<std::string, std::string>, int64_t> pairs;
    for (auto& [syms, n] : w)
      for (size_t i = 0; i + 1 < syms.size(); ++i) pairs[{syms[i], syms[i + 1]}] += n;
    auto best = pairs.end();
    for (auto it = pairs.begin(); it != pairs.end(); ++it)  // most frequent; ties: first in order
      if (best == pairs.end() || it->second > best->second) best = it;
    if (best == pairs.end() || best->second < 2) break;
    const auto [a, b] = best->first;
    const std::string ab = a + b;
    if (!vocab.contains(ab)) {
      vocab[ab] = int64_t(id_to_tok.size());
      id_to_tok.push_back(ab);
    }
    merges.push_back(json::array({a, b}));
    for (auto& [syms, n] : w) {
      std::vector<std::string> out;
      for (size_t i = 0; i < syms.size(); ++i) {
        if (i + 1 < syms.size() && syms[i] == a && syms[i + 1] == b) {
          out.push_back(ab);
          ++i;
        } else {
          out.push_back(syms[i]);
        }
      }
      syms.swap(out);
    }
  }
  // Special tokens take the ids after the learnt vocabulary; the rest are reserved specials.
  json added = json::array();
  auto add_special = [&](const std::string& s) {
    added.push_back({{"id", int64_t(id_to_tok.size())}, {"content", s}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
    id_to_tok.push_back(s);
  };
  for (auto& s : specials) add_special(s);
  for (int r = 0; int64_t(id_to_tok.size()) < vocab_size; ++r) add_special("<|reserved_special_token_" + std::to_string(r) + "|>");

  TokenizerFiles f;
  f.bos_id = int64_t(vocab.size());  // the first special token
  f.eos_id = f.bos_id + 1;
  f.eot_id = f.bos_id + 4;
  f.tokenizer = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         json::array({{{"type", "Split"}, {"pattern", {{"Regex", kSplitRegex}}}, {"behavior", "Isolated"}, {"invert", false}},
                      {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}})}}},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", json::array({{{"SpecialToken", {{"id", specials[0]}, {"type_id", 0}}}},
                                {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
        {"pair", json::array({{{"SpecialToken", {{"id", specials[0]}, {"type_id", 0}}}},
                              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                              {{"SpecialToken", {{"id", specials[0]}, {"type_id", 1}}}},
                              {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}})},
        {"special_tokens", {{specials[0], {{"id", specials[0]}, {"ids", {f.bos_id}}, {"tokens", {specials[0]}}}}}}}},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", true},
        {"vocab", vocab}, {"merges", merges}}}};
  f.config = {{"bos_token", specials[0]},
              {"eos_token", "<|eot_id|>"},
              {"clean_up_tokenization_spaces", false},
              {"model_max_length", 1000000},
              {"tokenizer_class", "PreTrainedTokenizerFast"},
              {"chat_template", kLlama3ChatTemplate}};
  return f;
}

void save_tokenizer_files(const TokenizerFiles& t, const std::string& dir) {
  write_file_atomic(dir + "/tokenizer.json", t.tokenizer.dump() + "\n");
  write_file_atomic(dir + "/tokenizer_config.json", t.config.dump(2) + "\n");
}

}  // namespace forge::data
