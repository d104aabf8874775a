// JSON mode (`response_format: {"type": "json_object"}`): a byte-level recogniser of JSON
// prefixes, and the tokens that may come next. The engine masks every other token before the
// draw and ends the request once the object closes, so a finished output always parses.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "data/tokenizer.h"

namespace forge::infer {

// Reads RFC 8259 JSON whose top-level value is an object, one byte at a time. Whitespace outside
// strings is limited to kMaxWhitespace bytes in a row (a model can otherwise emit newlines for
// ever); strings hold UTF-8 (RFC 3629: no overlongs, surrogates or code points past U+10FFFF),
// control characters only escaped.
class JsonMatcher {
 public:
  static constexpr int kMaxWhitespace = 32;
  // False when c cannot continue what was read; the matcher is then left in an unspecified state
  // (callers try bytes on a copy).
  bool feed(unsigned char c);
  bool feed(std::string_view s) {
    for (unsigned char c : s)
      if (!feed(c)) return false;
    return true;
  }
  bool done() const { return mode_ == Mode::Done; }

 private:
  enum class Mode : uint8_t {
    Value,          // a value must start (after ':' or ',' in an array)
    Start,          // the top-level object must start
    KeyOrClose,     // after '{'
    Key,            // after ',' in an object
    Colon,
    ValueOrClose,   // after '['
    AfterValue,     // ',' or the container's close
    String,
    Escape,
    Hex,            // \uXXXX: hex_ digits still to come
    Number,
    Literal,        // true, false, null: literal_[lit_pos_] next
    Done,
  };
  enum Num : uint8_t { Minus, Zero, Int, Dot, Frac, E, ESign, Exp };
  bool start_value(unsigned char c);
  bool after_value(unsigned char c);
  bool whitespace(unsigned char c);

  Mode mode_ = Mode::Start;
  bool key_ = false;        // the string being read is an object key
  Num num_ = Minus;
  uint8_t hex_ = 0, lit_pos_ = 0, ws_ = 0;
  uint8_t cont_ = 0;               // UTF-8 continuation bytes still to come in a string
  uint8_t lo_ = 0x80, hi_ = 0xbf;  // the range of the next continuation byte
  const char* literal_ = nullptr;
  std::string stack_;  // '{' or '[' for each open container
};

// Each token's bytes as they appear after other text (decoded after a fixed token, so a decoder's
// rule for the first token does not change them); special tokens and tokens without bytes
// are empty and never allowed.
std::vector<std::string> token_texts(const data::Tokenizer& tok, int64_t vocab_size);

// Which of V tokens may follow the matcher's input: allowed[t] is 1 where m + token t's bytes is
// still a JSON prefix.
void allowed_tokens(const JsonMatcher& m, const std::vector<std::string>& texts, std::vector<uint8_t>& allowed);

}  // namespace forge::infer
