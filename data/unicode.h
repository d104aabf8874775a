// UTF-8 helpers for the tokenizer: code point iteration, GPT-2's byte <-> printable-char map,
// Unicode normalisation (ICU), and PCRE2 regexes with Unicode classes.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace forge::data {

// Byte length of the UTF-8 sequence starting with lead byte c (1 for invalid leads).
int utf8_len(unsigned char c);
std::string utf8_encode(uint32_t cp);
std::vector<std::string> utf8_chars(std::string_view s);  // one string per code point
uint32_t utf8_codepoint(std::string_view ch);  // the first code point of ch (U+FFFD if invalid)
bool utf8_valid(std::string_view s);
// Bytes at the end of s that begin a UTF-8 sequence still missing its continuation bytes.
size_t utf8_incomplete_tail(std::string_view s);
// Invalid sequences become U+FFFD (as Rust's from_utf8_lossy).
std::string utf8_lossy(std::string_view bytes);

// GPT-2 byte-level alphabet: every byte maps to a printable code point (as UTF-8 string).
const std::string& byte_to_unicode(unsigned char b);
// Inverse: returns -1 when the code point is not in the alphabet.
int unicode_to_byte(uint32_t cp);

enum class NormalForm { NFC, NFD, NFKC, NFKD };
std::string normalize_unicode(std::string_view s, NormalForm form);
std::string to_lower(std::string_view s);  // Unicode lowercase

// A PCRE2 regex in UTF + Unicode-property mode; safe to share between threads.
class Regex {
 public:
  explicit Regex(const std::string& pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  // Non-overlapping matches [begin, end) in byte offsets, left to right.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view s) const;

 private:
  void* code_ = nullptr;
};

}  // namespace forge::data
