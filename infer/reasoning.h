// Reasoning models (Qwen 3, QwQ, DeepSeek R1 and its distills) think inside <think>...</think>
// before they answer. As vLLM's --reasoning-parser does, the server returns the thinking apart from
// the answer (the message's `reasoning`, and `reasoning_content` as DeepSeek names it), and guided
// output (JSON schemas, tool calls) holds only the answer: the model thinks freely, then answers
// in the shape asked for.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "infer/json_matcher.h"
#include "infer/token_mask.h"

namespace forge::infer {

enum class ReasoningFormat { None, Think };

// "think" (also "qwen3", "deepseek_r1", vLLM's names for the same tags) or "none"; else throws.
ReasoningFormat reasoning_format_named(const std::string& name);
const char* reasoning_format_name(ReasoningFormat f);
// Think when the chat template writes both tags; None otherwise.
ReasoningFormat detect_reasoning_format(const std::string& chat_template);

// Splits a reply, as it streams, into reasoning and content. Bytes between the tags are reasoning
// and bytes after the end tag content, as written (vLLM strips neither); whitespace before a start
// tag that opens the reply is dropped. A reply that opens no reasoning is content byte for byte.
class ReasoningSplitter {
 public:
  static constexpr std::string_view kStart = "<think>", kEnd = "</think>";
  enum class Phase {
    Start,    // the reply may open reasoning with kStart (after whitespace)
    Inside,   // reasoning until kEnd
    Content,  // the answer
  };
  // Where a rendered chat prompt leaves its reply: one that ends by opening reasoning (DeepSeek R1's
  // and Qwen 3 thinking templates) starts Inside; one that ends by closing it (Qwen 3 with
  // enable_thinking false) in Content; any other at Start.
  static Phase after_prompt(std::string_view prompt);

  explicit ReasoningSplitter(Phase p = Phase::Start) : phase_(p) {}
  // New text in; reasoning and content that are decided are appended.
  void push(std::string_view text, std::string& reasoning, std::string& content);
  // The reply has ended: what was held back comes out (a start tag cut short is content, an end
  // tag cut short is reasoning).
  void finish(std::string& reasoning, std::string& content);
  Phase phase() const { return phase_; }
  bool answering() const { return phase_ == Phase::Content; }
  bool opened() const { return opened_; }  // the reply wrote a start tag
  bool holding() const { return !held_.empty(); }

 private:
  Phase phase_;
  std::string held_;  // Start: whitespace and a partial start tag; Inside: a partial end tag
  bool opened_ = false;
};

// The mask of guided JSON while a reply is not yet answering. Inside reasoning every token may
// come but one that ends it with an answer the matcher refuses (only tokens holding '>', kEnd's
// last byte, can end it); at Start a token may open reasoning or begin an answer the matcher
// takes. allowed is sized to the vocabulary; eos is the caller's to mask.
void reasoning_allowed(const ReasoningSplitter& s, const JsonMatcher& m, const TokenBytes& v,
                       std::vector<uint8_t>& allowed);

}  // namespace forge::infer
