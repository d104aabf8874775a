// Which tokens may come next under guided JSON decoding: the vocabulary as bytes, indexed once per
// tokenizer, and the mask a JsonMatcher allows.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "infer/json_matcher.h"

namespace forge::infer {

struct TokenBytes {
  // Each token's bytes as they appear after other text (decoded after a fixed token, so a
  // decoder's rule for the first token does not change them); special tokens and tokens without
  // bytes are empty and never allowed.
  std::vector<std::string> texts;
  std::vector<int32_t> by_first;          // tokens with bytes, ordered by their first byte...
  std::array<int32_t, 257> first_start{};  // ...those starting with byte b: [first_start[b], first_start[b + 1])
  // Tokens that are plain string content (whole UTF-8 characters, no control character, '"' or
  // '\') with their character counts; the others have some byte a string treats specially.
  std::vector<int32_t> plain, plain_chars, special;
  // Tokens holding '}' / '>': the only ones that can close a JSON document (a tool call) or a tag
  // (</think>) partway through, and go on past it.
  std::vector<int32_t> with_brace, with_angle;
};

TokenBytes token_bytes(const data::Tokenizer& tok, int64_t vocab_size);
TokenBytes index_tokens(std::vector<std::string> texts);  // the index over given token bytes

// allowed[t] is 1 where m + token t's bytes is still a prefix the schema admits.
void allowed_tokens(const JsonMatcher& m, const TokenBytes& v, std::vector<uint8_t>& allowed);

}  // namespace forge::infer
