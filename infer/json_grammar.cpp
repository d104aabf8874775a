#include "infer/json_grammar.h"

#include <algorithm>

namespace forge::infer {
namespace {
bool is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
bool is_hex(unsigned char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
}  // namespace

bool JsonMatcher::whitespace(unsigned char c) {
  if (!is_ws(c)) return false;
  return ++ws_ <= kMaxWhitespace;
}

bool JsonMatcher::start_value(unsigned char c) {
  switch (c) {
    case '{': stack_.push_back('{'); mode_ = Mode::KeyOrClose; return true;
    case '[': stack_.push_back('['); mode_ = Mode::ValueOrClose; return true;
    case '"': key_ = false; mode_ = Mode::String; return true;
    case 't': literal_ = "true"; break;
    case 'f': literal_ = "false"; break;
    case 'n': literal_ = "null"; break;
    default:
      if (c == '-' || is_digit(c)) {
        num_ = c == '-' ? Minus : c == '0' ? Zero : Int;
        mode_ = Mode::Number;
        return true;
      }
      return false;
  }
  lit_pos_ = 1;
  mode_ = Mode::Literal;
  return true;
}

// After a value (always inside a container: the top level is an object): a ',' or the
// container's close; the top-level object's close ends it all.
bool JsonMatcher::after_value(unsigned char c) {
  if (c == ',') {
    mode_ = stack_.back() == '{' ? Mode::Key : Mode::Value;
    return true;
  }
  if (c == (stack_.back() == '{' ? '}' : ']')) {
    stack_.pop_back();
    mode_ = stack_.empty() ? Mode::Done : Mode::AfterValue;
    return true;
  }
  return false;
}

bool JsonMatcher::feed(unsigned char c) {
  if (mode_ != Mode::String && mode_ != Mode::Escape && mode_ != Mode::Hex && mode_ != Mode::Number &&
      mode_ != Mode::Literal && mode_ != Mode::Done) {
    if (is_ws(c)) return whitespace(c);
    ws_ = 0;
  }
  switch (mode_) {
    case Mode::Start:
      return c == '{' && start_value(c);
    case Mode::Value:
      return start_value(c);
    case Mode::ValueOrClose:
      return c == ']' ? after_value(c) : start_value(c);
    case Mode::KeyOrClose:
      if (c == '}') return after_value(c);
      [[fallthrough]];
    case Mode::Key:
      if (c != '"') return false;
      key_ = true;
      mode_ = Mode::String;
      return true;
    case Mode::Colon:
      if (c != ':') return false;
      mode_ = Mode::Value;
      return true;
    case Mode::AfterValue:
      return after_value(c);
    case Mode::String:
      if (cont_ > 0) {  // inside a multi-byte character
        if (c < lo_ || c > hi_) return false;
        --cont_;
        lo_ = 0x80, hi_ = 0xbf;
        return true;
      }
      if (c == '"') {
        mode_ = key_ ? Mode::Colon : Mode::AfterValue;
        return true;
      }
      if (c == '\\') mode_ = Mode::Escape;
      if (c < 0x80) return c >= 0x20;
      // A lead byte, and the range its first continuation byte must fall in (RFC 3629 table).
      if (c >= 0xc2 && c <= 0xdf) cont_ = 1;
      else if (c >= 0xe0 && c <= 0xef) cont_ = 2, lo_ = c == 0xe0 ? 0xa0 : 0x80, hi_ = c == 0xed ? 0x9f : 0xbf;
      else if (c >= 0xf0 && c <= 0xf4) cont_ = 3, lo_ = c == 0xf0 ? 0x90 : 0x80, hi_ = c == 0xf4 ? 0x8f : 0xbf;
      else return false;
      return true;
    case Mode::Escape:
      if (c == 'u') {
        hex_ = 4;
        mode_ = Mode::Hex;
        return true;
      }
      mode_ = Mode::String;
      return std::string_view("\"\\/bfnrt").find(char(c)) != std::string_view::npos;
    case Mode::Hex:
      if (!is_hex(c)) return false;
      if (--hex_ == 0) mode_ = Mode::String;
      return true;
    case Mode::Number: {
      const bool digit = is_digit(c);
      switch (num_) {
        case Minus: if (!digit) return false; num_ = c == '0' ? Zero : Int; return true;
        case Dot: if (!digit) return false; num_ = Frac; return true;
        case E: if (c == '+' || c == '-') { num_ = ESign; return true; } [[fallthrough]];
        case ESign: if (!digit) return false; num_ = Exp; return true;
        case Int: if (digit) return true; [[fallthrough]];
        case Zero:
          if (c == '.') { num_ = Dot; return true; }
          if (c == 'e' || c == 'E') { num_ = E; return true; }
          break;
        case Frac:
          if (digit) return true;
          if (c == 'e' || c == 'E') { num_ = E; return true; }
          break;
        case Exp: if (digit) return true; break;
      }
      // The number is complete and c belongs to what follows it.
      mode_ = Mode::AfterValue;
      return feed(c);
    }
    case Mode::Literal:
      if (c != static_cast<unsigned char>(literal_[lit_pos_])) return false;
      if (literal_[++lit_pos_] == 0) mode_ = Mode::AfterValue;
      return true;
    case Mode::Done:
      return false;
  }
  return false;
}

std::vector<std::string> token_texts(const data::Tokenizer& tok, int64_t vocab_size) {
  // A token's bytes after a fixed ordinary token: decoders that strip the first token's leading
  // space (SentencePiece's "Strip") would otherwise change them.
  int64_t anchor = -1;
  for (const char* a : {"a", "Ġa", "▁a", "0"})
    if ((anchor = tok.token_to_id(a)) >= 0) break;
  const std::string lead = anchor >= 0 ? tok.decode_bytes(&anchor, 1, false) : std::string();
  std::vector<std::string> out(static_cast<size_t>(vocab_size));
  for (int64_t t = 0; t < vocab_size && t < tok.vocab_size(); ++t) {
    if (tok.is_special(t)) continue;
    if (anchor < 0) {
      out[size_t(t)] = tok.decode_bytes(&t, 1, false);
      continue;
    }
    const int64_t pair[2] = {anchor, t};
    const std::string both = tok.decode_bytes(pair, 2, false);
    if (both.size() > lead.size() && both.compare(0, lead.size(), lead) == 0) out[size_t(t)] = both.substr(lead.size());
  }
  return out;
}

void allowed_tokens(const JsonMatcher& m, const std::vector<std::string>& texts, std::vector<uint8_t>& allowed) {
  allowed.assign(texts.size(), 0);
  // Most tokens fail on their first byte: try each first byte once.
  int8_t first[256];
  std::fill(std::begin(first), std::end(first), int8_t(-1));
  for (size_t t = 0; t < texts.size(); ++t) {
    const std::string& s = texts[t];
    if (s.empty()) continue;
    int8_t& f = first[static_cast<unsigned char>(s[0])];
    if (f < 0) {
      JsonMatcher one = m;
      f = one.feed(static_cast<unsigned char>(s[0])) ? 1 : 0;
    }
    if (!f) continue;
    JsonMatcher copy = m;
    allowed[t] = copy.feed(s) ? 1 : 0;
  }
}

}  // namespace forge::infer
