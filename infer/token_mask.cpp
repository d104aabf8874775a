#include "infer/token_mask.h"

#include <algorithm>

#include "data/unicode.h"

namespace forge::infer {
namespace {
// Characters in s when it is plain string content (valid UTF-8 with no byte a JSON string treats
// specially), else -1.
int32_t plain_characters(const std::string& s) {
  if (!data::utf8_valid(s)) return -1;
  int32_t chars = 0;
  for (unsigned char c : s) {
    if (c < 0x20 || c == '"' || c == '\\') return -1;
    chars += (c & 0xc0) != 0x80;  // each character has one byte that is no continuation byte
  }
  return chars;
}
}  // namespace

TokenBytes token_bytes(const data::Tokenizer& tok, int64_t vocab_size) {
  // A token's bytes after a fixed ordinary token: decoders that strip the first token's leading
  // space (SentencePiece's "Strip") would otherwise change them.
  int64_t anchor = -1;
  for (const char* a : {"a", "Ġa", "▁a", "0"})
    if ((anchor = tok.token_to_id(a)) >= 0) break;
  const std::string lead = anchor >= 0 ? tok.decode_bytes(&anchor, 1, false) : std::string();
  std::vector<std::string> texts(static_cast<size_t>(vocab_size));
  for (int64_t t = 0; t < vocab_size && t < tok.vocab_size(); ++t) {
    if (tok.is_special(t)) continue;
    std::string& out = texts[size_t(t)];
    if (anchor < 0) {
      out = tok.decode_bytes(&t, 1, false);
      continue;
    }
    const int64_t pair[2] = {anchor, t};
    const std::string both = tok.decode_bytes(pair, 2, false);
    if (both.size() > lead.size() && both.compare(0, lead.size(), lead) == 0) out = both.substr(lead.size());
  }
  return index_tokens(std::move(texts));
}

TokenBytes index_tokens(std::vector<std::string> texts) {
  TokenBytes v;
  v.texts = std::move(texts);
  const int32_t vocab_size = int32_t(v.texts.size());
  std::array<int32_t, 256> count{};
  for (int32_t t = 0; t < vocab_size; ++t) {
    const std::string& s = v.texts[size_t(t)];
    if (s.empty()) continue;
    ++count[static_cast<unsigned char>(s[0])];
    const int32_t chars = plain_characters(s);
    if (chars < 0) {
      v.special.push_back(t);
    } else {
      v.plain.push_back(t);
      v.plain_chars.push_back(chars);
    }
  }
  for (int b = 0; b < 256; ++b) v.first_start[size_t(b + 1)] = v.first_start[size_t(b)] + count[size_t(b)];
  v.by_first.resize(size_t(v.first_start[256]));
  std::array<int32_t, 257> at = v.first_start;
  for (int32_t t = 0; t < vocab_size; ++t) {
    const std::string& s = v.texts[size_t(t)];
    if (s.empty()) continue;
    v.by_first[size_t(at[static_cast<unsigned char>(s[0])]++)] = t;
    if (s.find('}') != std::string::npos) v.with_brace.push_back(t);
    if (s.find('>') != std::string::npos) v.with_angle.push_back(t);
  }
  return v;
}

void allowed_tokens(const JsonMatcher& m, const TokenBytes& v, std::vector<uint8_t>& allowed) {
  allowed.assign(v.texts.size(), 0);
  JsonMatcher scratch = m;
  if (const int64_t room = m.string_room(); room >= 0) {
    // Inside a string: plain text fits while it is short enough; only the rest is tried.
    for (size_t i = 0; i < v.plain.size(); ++i)
      if (v.plain_chars[i] <= room) allowed[size_t(v.plain[i])] = 1;
    for (int32_t t : v.special) {
      scratch.assign(m);
      allowed[size_t(t)] = scratch.feed(v.texts[size_t(t)]) ? 1 : 0;
    }
    return;
  }
  // Elsewhere most tokens fail on their first or second byte: each is tried once per prefix.
  JsonMatcher first = m;
  for (int b = 0; b < 256; ++b) {
    if (v.first_start[size_t(b)] == v.first_start[size_t(b + 1)]) continue;
    first.assign(m);
    if (!first.feed(static_cast<unsigned char>(b))) continue;
    int8_t second[256];
    std::fill(std::begin(second), std::end(second), int8_t(-1));
    for (int32_t k = v.first_start[size_t(b)]; k < v.first_start[size_t(b + 1)]; ++k) {
      const int32_t t = v.by_first[size_t(k)];
      const std::string& s = v.texts[size_t(t)];
      if (s.size() > 1) {
        int8_t& ok = second[static_cast<unsigned char>(s[1])];
        if (ok < 0) {
          scratch.assign(first);
          ok = scratch.feed(static_cast<unsigned char>(s[1])) ? 1 : 0;
        }
        if (!ok) continue;
        if (s.size() > 2) {
          scratch.assign(first);
          if (!scratch.feed(std::string_view(s).substr(1))) continue;
        }
      }
      allowed[size_t(t)] = 1;
    }
  }
}

}  // namespace forge::infer
