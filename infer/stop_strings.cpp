// Stop-string matching with a hold-back window (see stop_strings.h).
#include "infer/stop_strings.h"

#include <algorithm>

namespace forge::infer {

StopMatcher::StopMatcher(std::vector<std::string> stops) {
  for (auto& s : stops)
    if (!s.empty()) stops_.push_back(std::move(s));
  for (auto& s : stops_) longest_ = std::max(longest_, s.size());
}

std::string StopMatcher::push(const std::string& text, bool* hit, bool armed) {
  *hit = false;
  held_ += text;
  if (!armed) unarmed_ = held_.size();
  size_t first = std::string::npos;
  if (armed)
    for (auto& s : stops_)  // from the first place where s would end in armed text
      first = std::min(first, held_.find(s, unarmed_ >= s.size() ? unarmed_ - s.size() + 1 : 0));
  if (first != std::string::npos) {
    *hit = true;
    std::string out = held_.substr(0, first);
    held_.clear();
    unarmed_ = 0;
    return out;
  }
  // Keep the last longest-1 bytes (a stop string may start there), not splitting a UTF-8 character.
  if (held_.size() < longest_) return "";
  size_t cut = held_.size() - (longest_ ? longest_ - 1 : 0);
  while (cut > 0 && cut < held_.size() && (static_cast<unsigned char>(held_[cut]) & 0xC0) == 0x80) --cut;
  std::string out = held_.substr(0, cut);
  held_.erase(0, cut);
  unarmed_ = unarmed_ > cut ? unarmed_ - cut : 0;
  return out;
}

std::string StopMatcher::flush(const std::string& tail) {
  bool hit = false;
  std::string out = push(tail, &hit);
  if (!hit) out += held_;
  held_.clear();
  unarmed_ = 0;
  return out;
}

}  // namespace forge::infer
