#include "infer/reasoning.h"

#include "core/error.h"
#include "infer/stop_strings.h"

namespace forge::infer {
namespace {
std::string_view ltrim(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && is_json_space(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}
std::string_view rtrim(std::string_view s) {
  size_t n = s.size();
  while (n > 0 && is_json_space(static_cast<unsigned char>(s[n - 1]))) --n;
  return s.substr(0, n);
}
bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

// Whether the answer a token would begin fits the matcher (a copy is fed).
bool answer_fits(const JsonMatcher& m, std::string_view answer) {
  if (answer.empty()) return true;
  JsonMatcher j = m;
  return j.feed(answer);
}
}  // namespace

ReasoningFormat reasoning_format_named(const std::string& name) {
  if (name == "think" || name == "qwen3" || name == "deepseek_r1") return ReasoningFormat::Think;
  if (name == "none") return ReasoningFormat::None;
  throw Error(detail::cat("--reasoning-parser must be auto, think (qwen3, deepseek_r1) or none, got '", name, "'"));
}

const char* reasoning_format_name(ReasoningFormat f) { return f == ReasoningFormat::Think ? "think" : "none"; }

ReasoningFormat detect_reasoning_format(const std::string& t) {
  const bool both = t.find(ReasoningSplitter::kStart) != std::string::npos &&
                    t.find(ReasoningSplitter::kEnd) != std::string::npos;
  return both ? ReasoningFormat::Think : ReasoningFormat::None;
}

ReasoningSplitter::Phase ReasoningSplitter::after_prompt(std::string_view prompt) {
  const std::string_view p = rtrim(prompt);
  if (ends_with(p, kStart)) return Phase::Inside;
  if (ends_with(p, kEnd)) return Phase::Content;
  return Phase::Start;
}

void ReasoningSplitter::push(std::string_view text, std::string& reasoning, std::string& content) {
  while (!text.empty()) {
    switch (phase_) {
      case Phase::Start: {
        // Bytes are taken one at a time until they show whether the reply opens reasoning.
        held_.push_back(text.front());
        text.remove_prefix(1);
        const std::string_view t = ltrim(held_);
        if (t.size() < kStart.size() && kStart.substr(0, t.size()) == t) continue;  // may still open it
        if (t == kStart) {
          phase_ = Phase::Inside;
          opened_ = true;
        } else {
          phase_ = Phase::Content;
          content += held_;
        }
        held_.clear();
        break;
      }
      case Phase::Inside: {
        held_.append(text);
        text = {};
        const size_t at = held_.find(kEnd);
        if (at == std::string::npos) {
          const size_t keep = partial_tag(held_, kEnd);
          reasoning.append(held_, 0, held_.size() - keep);
          held_.erase(0, held_.size() - keep);
        } else {
          reasoning.append(held_, 0, at);
          phase_ = Phase::Content;
          content.append(held_, at + kEnd.size());
          held_.clear();
        }
        break;
      }
      case Phase::Content:
        content.append(text);
        text = {};
        break;
    }
  }
}

void ReasoningSplitter::finish(std::string& reasoning, std::string& content) {
  if (phase_ == Phase::Start) content += held_;
  if (phase_ == Phase::Inside) reasoning += held_;
  held_.clear();
}

void reasoning_allowed(const ReasoningSplitter& s, const JsonMatcher& m, const TokenBytes& v,
                       std::vector<uint8_t>& allowed) {
  static_assert(ReasoningSplitter::kEnd.back() == '>', "the tokens that can end reasoning are v.with_angle");
  const size_t V = v.texts.size();
  allowed.assign(V, 1);
  if (s.answering()) return;
  auto fits = [&](const std::string& bytes) {
    ReasoningSplitter x = s;
    std::string reasoning, answer;
    x.push(bytes, reasoning, answer);
    return !x.answering() || answer_fits(m, answer);
  };
  if (s.phase() == ReasoningSplitter::Phase::Inside) {
    for (int32_t t : v.with_angle) allowed[size_t(t)] = fits(v.texts[size_t(t)]);
    return;
  }
  // Start: a token that cannot touch the start tag (no '<', not all whitespace) begins the answer
  // with its own bytes, which the matcher's mask already judged; others are walked through.
  std::vector<uint8_t> json;
  allowed_tokens(m, v, json);
  for (size_t t = 0; t < V; ++t) {
    const std::string& b = v.texts[t];
    const bool plain = !s.holding() && !ltrim(b).empty() && b.find('<') == std::string::npos;
    allowed[t] = plain ? json[t] : fits(b);
  }
}

}  // namespace forge::infer
