// Feeding text to a guided-JSON matcher in the tests: where it stops, and whether it takes a
// whole document.
#pragma once
#include <memory>
#include <string_view>

#include "infer/json_matcher.h"

namespace forge::infer::json_test {

// Where a copy of `start` first refuses s (s.size() when it takes all of it); *out gets the
// state after all of s.
inline size_t accepted_bytes(const JsonMatcher& start, std::string_view s, JsonMatcher* out = nullptr) {
  JsonMatcher m = start;
  for (size_t i = 0; i < s.size(); ++i)
    if (!m.feed(static_cast<unsigned char>(s[i]))) return i;
  if (out) *out = m;
  return s.size();
}

// s is a whole document the schema admits.
inline bool takes_whole(std::shared_ptr<const JsonSchema> schema, std::string_view s) {
  JsonMatcher m(schema);
  return accepted_bytes(m, s, &m) == s.size() && m.complete();
}

}  // namespace forge::infer::json_test
