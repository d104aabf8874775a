// Guided JSON decoding: a byte-level recogniser of the prefixes of JSON documents that a schema
// (json_schema.h) admits. The engine masks every token whose bytes it refuses before the draw
// (token_mask.h) and ends the request once the document is complete, so a finished output parses
// and validates. JSON mode (`json_object`) is the schema of any object.
//
// Every prefix the matcher takes can still be completed: a key is only begun when one may follow,
// a string may only close once long enough, an array only once it holds enough items.
#pragma once
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "infer/json_schema.h"

namespace forge::infer {

// JSON's whitespace (RFC 8259): space, tab, line feed, carriage return.
inline bool is_json_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

class JsonMatcher {
 public:
  static constexpr int kMaxWhitespace = 32;  // indentation bytes after a line break (see whitespace())
  static constexpr size_t kMaxDepth = 128;   // open containers
  static constexpr size_t kMaxBranches = 64;  // anyOf readings followed at once
  // An unbounded number's integer digits and exponent digits (1e400 is JSON, but not a double).
  static constexpr int kMaxIntegerDigits = 100, kMaxExponentDigits = 2;

  explicit JsonMatcher(std::shared_ptr<const JsonSchema> schema);
  // False when c cannot continue what was read; the matcher is then left in an unspecified state
  // (callers try bytes on a copy).
  bool feed(unsigned char c);
  bool feed(std::string_view s) {
    for (unsigned char c : s)
      if (!feed(c)) return false;
    return true;
  }
  // The text read is a whole document (the output may end here)...
  bool complete() const;
  // ...and nothing may follow it (the request ends now).
  bool done() const;
  // Inside a string that any plain text may continue (no escape or character half read): how many
  // more characters fit; -1 when not in such a string.
  int64_t string_room() const;
  // Copies the other matcher's reading (same schema) into this one, reusing its memory.
  void assign(const JsonMatcher& other) { branches_ = other.branches_; }

 private:
  enum class Kind : uint8_t { Value, Object, Array, String, Number, Literal };
  // What one byte does to one reading: refused, taken, or to be handed again to the new top of
  // the stack (a number or literal ends on the byte after it; an array's first item starts with it).
  enum Result : uint8_t { Fail, Ok, Refeed };
  // One value being read. Containers stay on the stack while their members are read.
  struct Frame {
    const SchemaNode* node = nullptr;
    const std::vector<std::string>* lits = nullptr;  // Literal: the candidate texts
    Kind kind = Kind::Value;
    uint8_t step = 0;      // Object/Array: where in the container; Number: where in the number
    bool key = false;      // Object: reading a key (String: the key's string state below)
    bool lit_alive = false;
    uint8_t esc = 0, hex = 0, cont = 0, lo = 0x80, hi = 0xbf;  // string: escape, \u digits, UTF-8
    bool high_surrogate = false;
    uint16_t code = 0;     // the \u escape's value so far
    uint32_t lit_lo = 0, lit_hi = 0, lit_pos = 0;  // literal candidates [lit_lo, lit_hi), bytes matched
    int32_t key_index = -1;
    int64_t count = 0;     // Array: items; String: characters; bounded Number: the integer part
    int64_t frac = 0;      // bounded Number: the fraction in billionths
    uint8_t digits = 0, frac_digits = 0;  // Number: digits before and after the dot (unbounded: in the exponent)
    bool neg = false;      // bounded Number: a minus sign
    uint64_t seen[2] = {0, 0};  // Object: declared keys written
    bool has_seen(size_t key) const { return seen[key / 64] >> (key % 64) & 1; }
    bool operator==(const Frame&) const = default;
  };
  struct Branch {
    std::vector<Frame> stack;  // empty: the document is complete
    uint8_t ws = 0;
    uint8_t breaks = 0;  // line-break bytes in the stretch: 1 '\n', 2 '\r'
    bool dead = false;
    bool operator==(const Branch&) const = default;
  };

  Result step(Branch& b, unsigned char c);
  Result start_value(Branch& b, unsigned char c);
  Result object_step(Branch& b, unsigned char c);
  Result array_step(Branch& b, unsigned char c);
  Result number_step(Branch& b, unsigned char c);
  static bool number_reachable(const Frame& f);  // a bounded number: some value in bounds can follow
  static bool number_in_bounds(const Frame& f);  // a bounded number: its value now is in bounds
  Result literal_step(Branch& b, unsigned char c);
  static bool string_step(Frame& f, unsigned char c, bool* closed);
  static Result finish_value(Branch& b);
  // Whitespace between tokens is what compact and pretty-printed JSON write, as llama.cpp's JSON
  // grammars allow: one space (or tab), then at most one line break ("\n", "\r\n") and up to
  // kMaxWhitespace bytes of indentation. A model padding with blank lines or runs of spaces cannot.
  static Result whitespace(Branch& b, unsigned char c) {
    if (b.breaks == 2 && c != '\n') return Fail;  // "\r" only right before "\n"
    if (c == '\r' || c == '\n') {
      if (b.breaks & 1 || (c == '\r' && b.breaks)) return Fail;  // one break
      b.breaks |= c == '\n' ? 1 : 2;
      b.ws = 0;
      return Ok;
    }
    return ++b.ws <= (b.breaks ? kMaxWhitespace : 1) ? Ok : Fail;
  }
  static void end_whitespace(Branch& b) { b.ws = b.breaks = 0; }
  void push_value(Branch& b, int32_t node);
  void expand_unions(size_t i);
  static bool frame_complete(const Frame& f);

  std::shared_ptr<const JsonSchema> schema_;
  std::vector<Branch> branches_;  // the readings still alive (more than one only under anyOf)
};

}  // namespace forge::infer
