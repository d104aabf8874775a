// Stop strings over streamed text: text that could still be the start of a stop string is held
// back, so a stop string split across tokens is caught and never emitted.
#pragma once
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace forge::infer {

// How many bytes at the end of s could be the start of tag (held back until the next text shows).
inline size_t partial_tag(std::string_view s, std::string_view tag) {
  for (size_t n = std::min(s.size(), tag.size() - 1); n > 0; --n)
    if (s.substr(s.size() - n) == tag.substr(0, n)) return n;
  return 0;
}

class StopMatcher {
 public:
  StopMatcher() = default;
  explicit StopMatcher(std::vector<std::string> stops);
  // Adds newly decoded text and returns what is safe to emit. When a stop string appears, *hit is
  // set, the returned text ends right before it, and everything after it is dropped. Unarmed
  // (before min_tokens, as vLLM does) nothing stops, and once armed only a stop string that ends in
  // text pushed armed counts.
  std::string push(const std::string& text, bool* hit, bool armed = true);
  // End of generation: the held-back text (after adding tail), cut at a stop string if one appears.
  std::string flush(const std::string& tail);

 private:
  std::vector<std::string> stops_;
  size_t longest_ = 0;
  std::string held_;
  size_t unarmed_ = 0;  // held_'s leading bytes that were pushed unarmed
};

}  // namespace forge::infer
