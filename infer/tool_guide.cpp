#include "infer/tool_guide.h"

namespace forge::infer {
namespace {
int64_t nonspace(std::string_view s) {
  int64_t n = 0;
  for (unsigned char c : s) n += !is_json_space(c);
  return n;
}

// One byte after a call's document: whitespace before the end tag, or the tag's next byte. False
// when c is neither (or the tag is already whole).
bool end_step(const std::string& end, size_t& pos, int& space, unsigned char c) {
  if (pos == 0 && is_json_space(c) && space < ToolGuide::kMaxEndWhitespace) {
    ++space;
    return true;
  }
  if (pos == end.size() || c != static_cast<unsigned char>(end[pos])) return false;
  ++pos;
  return true;
}
}  // namespace

void ToolGuide::feed(std::string_view bytes) {
  for (unsigned char c : bytes) feed(c);
}

void ToolGuide::feed(unsigned char c) {
  switch (phase_) {
    case Phase::Text: {
      const std::string& begin = tag_->begin;
      tail_.push_back(char(c));
      if (tail_.size() > begin.size()) tail_.erase(0, tail_.size() - begin.size());
      nonspace_ += !is_json_space(c);
      if (tail_ == begin && (!tag_->at_start || nonspace_ == nonspace(begin))) open_call();
      return;
    }
    case Phase::Call:
      if (!call_->feed(c)) {  // given up: the rest is text
        call_.reset();
        phase_ = Phase::Text;
      } else if (call_->done()) {
        if (tag_->end.empty()) return call_written();
        phase_ = Phase::End;
        end_pos_ = 0;
        end_space_ = 0;
      }
      return;
    case Phase::End:
      if (!end_step(tag_->end, end_pos_, end_space_, c)) phase_ = Phase::Text;
      else if (end_pos_ == tag_->end.size()) call_written();
      return;
    case Phase::Closed:
      return;
  }
}

void ToolGuide::open_call() {
  tail_.clear();
  call_.emplace(tag_->schema);
  phase_ = Phase::Call;
  if (tag_->begin_in_document && !call_->feed(tag_->begin)) {
    call_.reset();
    phase_ = Phase::Text;
  }
}

void ToolGuide::call_written() {
  call_.reset();
  ++calls_;
  phase_ = tag_->max_calls > 0 && calls_ >= tag_->max_calls ? Phase::Closed : Phase::Text;
}

void ToolGuide::allowed(const TokenBytes& v, std::vector<uint8_t>& allowed) const {
  if (phase_ == Phase::Call) {
    allowed_tokens(*call_, v, allowed);
    // A token may also close the call and go on into what follows it, as Qwen's "}}\n" and "}\n"
    // do: the document's last bytes, then whitespace and the end tag. Only tokens holding '}' can.
    for (int32_t t : v.with_brace) {
      if (allowed[size_t(t)]) continue;
      JsonMatcher m = *call_;
      const std::string& bytes = v.texts[size_t(t)];
      size_t i = 0;
      while (i < bytes.size() && !m.done() && m.feed(static_cast<unsigned char>(bytes[i]))) ++i;
      if (!m.done() || i == bytes.size()) continue;
      size_t pos = 0;
      int space = 0;
      bool ok = true;
      while (ok && i < bytes.size()) ok = end_step(tag_->end, pos, space, static_cast<unsigned char>(bytes[i++]));
      allowed[size_t(t)] = ok;
    }
    return;
  }
  allowed.assign(v.texts.size(), 0);
  if (phase_ != Phase::End) return;
  // Whitespace, then the end tag, and nothing past it: only tokens starting with one of these bytes.
  const std::string& end = tag_->end;
  bool first[256] = {};
  for (unsigned char b : std::string_view(" \n\t\r")) first[b] = true;
  first[static_cast<unsigned char>(end[end_pos_])] = true;
  for (int b = 0; b < 256; ++b) {
    if (!first[b]) continue;
    for (int32_t k = v.first_start[size_t(b)]; k < v.first_start[size_t(b + 1)]; ++k) {
      const int32_t t = v.by_first[size_t(k)];
      size_t pos = end_pos_;
      int space = end_space_;
      bool ok = true;
      for (unsigned char c : v.texts[size_t(t)])
        if (!(ok = end_step(end, pos, space, c))) break;  // (nothing may follow the whole tag)
      if (ok) allowed[size_t(t)] = 1;
    }
  }
}

}  // namespace forge::infer
