#include "infer/json_matcher.h"

#include <algorithm>
#include <string>

namespace forge::infer {
namespace {
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
int hex_value(unsigned char c) {
  if (is_digit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

enum ObjectStep : uint8_t { KeyOrClose, KeyNext, Colon, AfterMember };
enum ArrayStep : uint8_t { ItemOrClose, AfterItem };
enum NumberStep : uint8_t { NumStart, Minus, Zero, Int, Dot, Frac, E, ESign, Exp };

const std::vector<std::string> kBooleans = {"false", "true"};
const std::vector<std::string> kNull = {"null"};

// Narrows [lo, hi) of sorted texts that share their first pos bytes to those whose next byte is c.
bool narrow(const std::vector<std::string>& v, uint32_t& lo, uint32_t& hi, uint32_t pos, unsigned char c) {
  auto at = [pos](const std::string& s) { return s.size() > pos ? int(static_cast<unsigned char>(s[pos])) : -1; };
  auto first = std::partition_point(v.begin() + lo, v.begin() + hi, [&](const std::string& s) { return at(s) < c; });
  auto last = std::partition_point(first, v.begin() + hi, [&](const std::string& s) { return at(s) == c; });
  if (first == last) return false;
  lo = uint32_t(first - v.begin());
  hi = uint32_t(last - v.begin());
  return true;
}
}  // namespace

JsonMatcher::JsonMatcher(std::shared_ptr<const JsonSchema> schema) : schema_(std::move(schema)) {
  branches_.emplace_back();
  push_value(branches_[0], schema_->root());
}

void JsonMatcher::push_value(Branch& b, int32_t node) {
  b.stack.emplace_back();
  b.stack.back().node = &schema_->node(node);
}

bool JsonMatcher::frame_complete(const Frame& f) {
  if (f.kind == Kind::Number)
    return (f.step == Zero || f.step == Int || f.step == Frac || f.step == Exp) &&
           (!f.node->bounded || number_in_bounds(f));
  return f.kind == Kind::Literal && (*f.lits)[f.lit_lo].size() == f.lit_pos;
}

bool JsonMatcher::complete() const {
  for (const Branch& b : branches_)
    if (b.stack.empty() || (b.stack.size() == 1 && frame_complete(b.stack[0]))) return true;
  return false;
}

bool JsonMatcher::done() const {
  for (const Branch& b : branches_)
    if (!b.stack.empty()) return false;
  return !branches_.empty();
}

int64_t JsonMatcher::string_room() const {
  if (branches_.size() != 1 || branches_[0].stack.empty()) return -1;
  const Frame& f = branches_[0].stack.back();
  if (f.esc || f.hex || f.cont || f.high_surrogate) return -1;  // (after a high surrogate only \u may come)
  if (f.kind == Kind::String) return f.node->max_length - f.count;
  return f.kind == Kind::Object && f.key && f.node->additional >= 0 ? SchemaNode::kUnbounded : -1;
}

// A value has ended: its container moves on.
JsonMatcher::Result JsonMatcher::finish_value(Branch& b) {
  b.stack.pop_back();
  end_whitespace(b);
  if (b.stack.empty()) return Ok;
  Frame& p = b.stack.back();
  if (p.kind == Kind::Object) {
    p.step = AfterMember;
  } else {
    ++p.count;
    p.step = AfterItem;
  }
  return Ok;
}

JsonMatcher::Result JsonMatcher::start_value(Branch& b, unsigned char c) {
  Frame& f = b.stack.back();
  const SchemaNode& n = *f.node;
  if (!n.literals.empty()) {
    f.kind = Kind::Literal;
    f.lits = &n.literals;
    f.lit_hi = uint32_t(n.literals.size());
    return literal_step(b, c);
  }
  switch (c) {
    case '{':
      if (!(n.types & SchemaNode::Object) || b.stack.size() > kMaxDepth) return Fail;
      f.kind = Kind::Object;
      f.step = KeyOrClose;
      return Ok;
    case '[':
      if (!(n.types & SchemaNode::Array) || b.stack.size() > kMaxDepth) return Fail;
      f.kind = Kind::Array;
      f.step = ItemOrClose;
      return Ok;
    case '"':
      if (!(n.types & SchemaNode::String)) return Fail;
      f.kind = Kind::String;
      return Ok;
    case 't':
    case 'f':
    case 'n':
      if (!(n.types & (c == 'n' ? SchemaNode::Null : SchemaNode::Boolean))) return Fail;
      f.kind = Kind::Literal;
      f.lits = c == 'n' ? &kNull : &kBooleans;
      f.lit_hi = uint32_t(f.lits->size());
      return literal_step(b, c);
    default:
      if (!(c == '-' || is_digit(c)) || !(n.types & (SchemaNode::Integer | SchemaNode::Number))) return Fail;
      f.kind = Kind::Number;
      f.step = NumStart;
      return number_step(b, c);
  }
}

// One byte of a string's content or its closing quote. Lengths count code points as Python does:
// an escaped surrogate pair is one.
bool JsonMatcher::string_step(Frame& f, unsigned char c, bool* closed) {
  const bool value = f.kind == Kind::String;
  if (f.cont > 0) {  // inside a multi-byte character
    if (c < f.lo || c > f.hi) return false;
    --f.cont;
    f.lo = 0x80, f.hi = 0xbf;
    return true;
  }
  if (f.esc) {
    f.esc = 0;
    if (c == 'u') {
      f.hex = 4;
      f.code = 0;
      return true;
    }
    return !f.high_surrogate && std::string_view("\"\\/bfnrt").find(char(c)) != std::string_view::npos;
  }
  if (f.hex) {
    const int h = hex_value(c);
    if (h < 0) return false;
    f.code = uint16_t(f.code * 16 + h);
    --f.hex;
    // Surrogates come in pairs, as nlohmann (and JSON's interoperability note) want: after a high
    // one (D800-DBFF) only a low one (DC00-DFFF), and a low one nowhere else. Its first two digits say.
    if (f.hex == 2 && (f.code >= 0xdc && f.code <= 0xdf) != f.high_surrogate) return false;
    if (f.hex == 0) {
      if (f.high_surrogate) --f.count;  // the pair is one code point
      f.high_surrogate = !f.high_surrogate && f.code >= 0xd800 && f.code <= 0xdbff;
    }
    return true;
  }
  if (f.high_surrogate && c != '\\') return false;  // only the low half may follow
  if (c == '"') {
    if (value && f.count < f.node->min_length) return false;
    *closed = true;
    return true;
  }
  if (value && f.count >= f.node->max_length && !f.high_surrogate) return false;
  ++f.count;
  if (c == '\\') {
    f.esc = 1;
    return true;
  }
  f.high_surrogate = false;
  if (c < 0x80) return c >= 0x20;
  // A lead byte, and the range its first continuation byte must fall in (RFC 3629 table).
  if (c >= 0xc2 && c <= 0xdf) f.cont = 1;
  else if (c >= 0xe0 && c <= 0xef) f.cont = 2, f.lo = c == 0xe0 ? 0xa0 : 0x80, f.hi = c == 0xed ? 0x9f : 0xbf;
  else if (c >= 0xf0 && c <= 0xf4) f.cont = 3, f.lo = c == 0xf0 ? 0x90 : 0x80, f.hi = c == 0xf4 ? 0x8f : 0xbf;
  else return false;
  return true;
}

JsonMatcher::Result JsonMatcher::object_step(Branch& b, unsigned char c) {
  Frame& f = b.stack.back();
  const SchemaNode& n = *f.node;
  const bool free_key = n.additional >= 0;  // any string, not only a declared key
  auto unseen_in = [&f](uint32_t lo, uint32_t hi) {
    for (uint32_t i = lo; i < hi; ++i)
      if (!f.has_seen(i)) return true;
    return false;
  };
  if (f.key) {
    if (!free_key) {  // declared keys only: their texts, quotes included, byte by byte
      if (!narrow(n.keys, f.lit_lo, f.lit_hi, f.lit_pos, c) || !unseen_in(f.lit_lo, f.lit_hi)) return Fail;
      if (n.keys[f.lit_lo].size() == ++f.lit_pos) f.key = false, f.key_index = int32_t(f.lit_lo), f.step = Colon;
      return Ok;
    }
    // Any key. Beside declared keys, escapes must follow a declared key's text: a key written
    // otherwise is then never a declared key in another escaping.
    if (f.lit_alive) f.lit_alive = narrow(n.keys, f.lit_lo, f.lit_hi, f.lit_pos++, c);
    if (!f.lit_alive && !n.keys.empty() && (c == '\\' || f.esc || f.hex)) return Fail;
    bool closed = false;
    if (!string_step(f, c, &closed)) return Fail;
    if (!closed) return Ok;
    f.key = false;
    f.step = Colon;
    f.key_index = f.lit_alive && n.keys[f.lit_lo].size() == f.lit_pos ? int32_t(f.lit_lo) : -1;
    return f.key_index < 0 || unseen_in(f.lit_lo, f.lit_lo + 1) ? Ok : Fail;  // a declared key once only
  }
  if (is_json_space(c)) return whitespace(b, c);
  end_whitespace(b);
  auto close = [&] {
    for (size_t i = 0; i < n.required.size(); ++i)
      if (n.required[i] && !f.has_seen(i)) return Fail;
    return finish_value(b);
  };
  switch (f.step) {
    case KeyOrClose:
      if (c == '}') return close();
      [[fallthrough]];
    case KeyNext:
      if (c != '"') return Fail;
      f.key = true;
      f.esc = f.hex = f.cont = 0;
      f.high_surrogate = false;
      f.lit_lo = 0, f.lit_hi = uint32_t(n.keys.size()), f.lit_pos = 0;
      f.lit_alive = narrow(n.keys, f.lit_lo, f.lit_hi, f.lit_pos++, c);
      return free_key || (f.lit_alive && unseen_in(f.lit_lo, f.lit_hi)) ? Ok : Fail;
    case Colon: {
      if (c != ':') return Fail;
      const int32_t child = f.key_index >= 0 ? n.key_nodes[size_t(f.key_index)] : n.additional;
      if (f.key_index >= 0) f.seen[f.key_index / 64] |= uint64_t(1) << (f.key_index % 64);
      f.step = AfterMember;
      push_value(b, child);
      return Ok;
    }
    default:  // AfterMember
      if (c == '}') return close();
      if (c != ',' || !(free_key || unseen_in(0, uint32_t(n.keys.size())))) return Fail;
      f.step = KeyNext;
      return Ok;
  }
}

JsonMatcher::Result JsonMatcher::array_step(Branch& b, unsigned char c) {
  Frame& f = b.stack.back();
  const SchemaNode& n = *f.node;
  if (is_json_space(c)) return whitespace(b, c);
  end_whitespace(b);
  if (c == ']') return f.count >= n.min_items ? finish_value(b) : Fail;
  if (f.step == AfterItem && c != ',') return Fail;
  const int32_t item = f.count < int64_t(n.prefix_items.size()) ? n.prefix_items[size_t(f.count)] : n.items;
  if (item < 0 || f.count >= n.max_items) return Fail;
  const bool first = f.step == ItemOrClose;
  push_value(b, item);
  return first ? Refeed : Ok;  // the first item starts with c itself
}

namespace {
__int128 pow10(int n) {
  __int128 p = 1;
  while (n-- > 0) p *= 10;
  return p;
}
// Some value of magnitude in [a, b] that is a multiple of step, with the sign, lies in [lo, hi]
// (every such multiple can be written: the callers' ranges hold every billionth they can reach).
bool meets(__int128 a, __int128 b, __int128 step, bool neg, __int128 lo, __int128 hi) {
  __int128 l = std::max(neg ? -b : a, lo), r = std::min(neg ? -a : b, hi);
  if (l > r) return false;
  const __int128 q = l / step * step;  // the multiples of step from l on
  return (q >= l ? q : q + step) <= r;
}
}  // namespace

bool JsonMatcher::number_in_bounds(const Frame& f) {
  const __int128 v = __int128(f.count) * SchemaNode::kNumberScale + f.frac;
  return meets(v, v, f.node->step, f.neg, f.node->lo, f.node->hi);
}

// The values a bounded number's prefix can still become, against its bounds: exact, since digits
// are limited (kIntDigits, kFracDigits) and there is no exponent.
bool JsonMatcher::number_reachable(const Frame& f) {
  const SchemaNode& n = *f.node;
  const __int128 S = SchemaNode::kNumberScale, m = f.count;
  const bool decimals = n.types & SchemaNode::Number;
  switch (f.step) {
    case Minus:  // any value <= 0 ("-0" is 0)
      return n.lo <= 0;
    case Zero:  // 0, or 0.x
      return meets(0, decimals ? S - 1 : 0, n.step, f.neg, n.lo, n.hi);
    case Int:  // m, or m followed by more digits (and, for numbers, a fraction)
      for (int more = 0; f.digits + more <= SchemaNode::kIntDigits; ++more) {
        const __int128 p = pow10(more), a = m * p * S;
        if (meets(a, decimals ? (m + 1) * p * S - 1 : ((m + 1) * p - 1) * S, n.step, f.neg, n.lo, n.hi))
          return true;
      }
      return false;
    default: {  // Dot or Frac: the fraction's next digits
      const __int128 base = m * S + f.frac;
      const __int128 room = f.step == Dot ? S : pow10(SchemaNode::kFracDigits - f.frac_digits);
      return meets(base, base + room - 1, n.step, f.neg, n.lo, n.hi);
    }
  }
}

JsonMatcher::Result JsonMatcher::number_step(Branch& b, unsigned char c) {
  Frame& f = b.stack.back();
  const bool digit = is_digit(c), integer = !(f.node->types & SchemaNode::Number);  // no fraction or exponent
  if (f.node->bounded) {  // the value so far, and whether the bounds can still be met
    const NumberStep was = NumberStep(f.step);
    if (was == NumStart && c == '-') f.neg = true;
    if (digit && (was == NumStart || was == Minus || was == Int)) {
      if (++f.digits > SchemaNode::kIntDigits) return Fail;
      f.count = f.count * 10 + (c - '0');
    }
    if (digit && (was == Dot || was == Frac)) {
      if (++f.frac_digits > SchemaNode::kFracDigits) return Fail;
      f.frac += (c - '0') * int64_t(pow10(SchemaNode::kFracDigits - f.frac_digits));
    }
    if (c == 'e' || c == 'E') return Fail;  // no exponent: it would reach any value
  } else if (digit) {  // every number accepted must read as a finite double: below 1e100 * 1e99
    const NumberStep was = NumberStep(f.step);
    const bool in_int = was == NumStart || was == Minus || was == Int, in_exp = was == E || was == ESign || was == Exp;
    if (in_int && ++f.digits > kMaxIntegerDigits) return Fail;
    if (in_exp && ++f.frac_digits > kMaxExponentDigits) return Fail;
    // The last digit the limits allow ends the number, as an integer 0 does: nothing of it may follow.
    if ((in_exp && f.frac_digits == kMaxExponentDigits) || (in_int && integer && f.digits == kMaxIntegerDigits)) {
      f.step = in_exp ? Exp : Int;
      return finish_value(b);
    }
  }
  auto to = [&f](NumberStep s) {
    f.step = s;
    return !f.node->bounded || number_reachable(f) ? Ok : Fail;
  };
  switch (f.step) {
    case NumStart:
      if (c == '-') return to(Minus);
      [[fallthrough]];
    case Minus:
      if (!digit) return Fail;
      if (c == '0' && integer) {  // an integer 0 is over: nothing may follow
        if (f.node->bounded && !number_in_bounds(f)) return Fail;
        return finish_value(b);
      }
      return to(c == '0' ? Zero : Int);
    case Dot:
      return digit ? to(Frac) : Fail;
    case E:
      if (c == '+' || c == '-') return to(ESign);
      [[fallthrough]];
    case ESign:
      return digit ? to(Exp) : Fail;
    case Zero:
      break;
    default:  // Int, Frac, Exp
      if (digit) return to(NumberStep(f.step));
  }
  if (!integer && f.step != Exp && (c == 'e' || c == 'E')) return to(E);
  if (!integer && f.step != Frac && f.step != Exp && c == '.') return to(Dot);
  // The number is complete and c belongs to what follows it (at the top level nothing may).
  if (b.stack.size() == 1 || (f.node->bounded && !number_in_bounds(f))) return Fail;
  finish_value(b);
  return Refeed;
}

JsonMatcher::Result JsonMatcher::literal_step(Branch& b, unsigned char c) {
  Frame& f = b.stack.back();
  if (narrow(*f.lits, f.lit_lo, f.lit_hi, f.lit_pos, c)) {
    ++f.lit_pos;
    // Ended, and no longer candidate can follow: the value is over now.
    if ((*f.lits)[f.lit_lo].size() == f.lit_pos && f.lit_hi - f.lit_lo == 1) return finish_value(b);
    return Ok;
  }
  // A complete number literal (1 of [1, 12]) ends on the byte after it.
  if (!frame_complete(f) || b.stack.size() == 1) return Fail;
  finish_value(b);
  return Refeed;
}

JsonMatcher::Result JsonMatcher::step(Branch& b, unsigned char c) {
  if (b.stack.empty()) return Fail;  // the document is complete: nothing may follow
  Frame& f = b.stack.back();
  switch (f.kind) {
    case Kind::Value:
      // Before the document any whitespace up to kMaxWhitespace bytes: a reasoning model writes
      // "\n\n" after </think>, and blank lines before a reply are the model's own style.
      if (is_json_space(c) && b.stack.size() == 1) return ++b.ws <= kMaxWhitespace ? Ok : Fail;
      if (is_json_space(c)) return whitespace(b, c);
      end_whitespace(b);
      return start_value(b, c);
    case Kind::Object: return object_step(b, c);
    case Kind::Array: return array_step(b, c);
    case Kind::String: {
      bool closed = false;
      if (!string_step(f, c, &closed)) return Fail;
      return closed ? finish_value(b) : Ok;
    }
    case Kind::Number: return number_step(b, c);
    case Kind::Literal: return literal_step(b, c);
  }
  return Fail;
}

// A value of an anyOf is about to start: follow each alternative as its own reading (the new
// ones go to the end of the list and read the same byte there).
void JsonMatcher::expand_unions(size_t i) {
  for (;;) {
    const Frame& top = branches_[i].stack.back();
    if (top.kind != Kind::Value || top.node->any_of.empty()) return;
    const std::vector<int32_t>& alts = top.node->any_of;
    for (size_t a = 1; a < alts.size(); ++a) {
      Branch copy = branches_[i];
      copy.stack.back().node = &schema_->node(alts[a]);
      branches_.push_back(std::move(copy));
    }
    branches_[i].stack.back().node = &schema_->node(alts[0]);
  }
}

bool JsonMatcher::feed(unsigned char c) {
  bool any = false;
  for (size_t i = 0; i < branches_.size(); ++i) {
    Result r;
    do {
      if (!is_json_space(c) && !branches_[i].stack.empty()) expand_unions(i);
      r = step(branches_[i], c);
    } while (r == Refeed);
    branches_[i].dead = r == Fail;
    any |= r == Ok;
  }
  if (branches_.size() > 1 || !any) {
    std::erase_if(branches_, [](const Branch& b) { return b.dead; });
    for (size_t i = 1; i < branches_.size(); ++i)  // alternatives that read alike are one
      if (std::find(branches_.begin(), branches_.begin() + i, branches_[i]) != branches_.begin() + i)
        branches_.erase(branches_.begin() + i--);
    if (branches_.size() > kMaxBranches) branches_.resize(kMaxBranches);
  }
  return any;
}

}  // namespace forge::infer
