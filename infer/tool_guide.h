// Tool calls inside free text (`tool_choice: "auto"`), guided as SGLang's structural tags are: the
// model writes what it likes until it opens a call with the format's `begin` bytes; from there the
// call must be a JSON document of the call schema, then optional whitespace and `end`, and the text
// is free again. A call that the model opens therefore always parses and names a given function
// with arguments its parameters admit, while a reply in words costs no masking at all.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "infer/json_matcher.h"
#include "infer/token_mask.h"

namespace forge::infer {

struct ToolTag {
  std::string begin;               // "<tool_call>" (Hermes, Qwen); "{" (Llama 3's bare JSON)
  bool begin_in_document = false;  // begin's bytes are the document's first ones ("{")
  bool at_start = false;           // a call only as the output's first non-whitespace bytes
  std::string end;                 // after the document ("</tool_call>"); "" for none
  std::shared_ptr<const JsonSchema> schema;  // one call: {"name": ..., "arguments": ...} or the like
  int64_t max_calls = 0;           // 0: any number; the request ends once this many are written
};

class ToolGuide {
 public:
  static constexpr int kMaxEndWhitespace = 8;  // whitespace bytes between a call and its end tag

  explicit ToolGuide(std::shared_ptr<const ToolTag> tag) : tag_(std::move(tag)) {}
  // The bytes of the token drawn. Bytes that break a call (only possible where a token both opens a
  // call and goes on past its first byte unmasked) give the call up: it stays text.
  void feed(std::string_view bytes);
  bool constrained() const { return phase_ == Phase::Call || phase_ == Phase::End; }  // the next token is masked
  bool closed() const { return phase_ == Phase::Closed; }  // max_calls written: the request ends
  int64_t calls() const { return calls_; }
  // allowed[t] = 1 where token t keeps the call well formed; only meaningful while constrained().
  void allowed(const TokenBytes& v, std::vector<uint8_t>& allowed) const;

 private:
  enum class Phase { Text, Call, End, Closed };
  void feed(unsigned char c);
  void open_call();
  void call_written();

  std::shared_ptr<const ToolTag> tag_;
  Phase phase_ = Phase::Text;
  std::optional<JsonMatcher> call_;
  std::string tail_;         // Text: the last bytes, to spot `begin` across tokens
  int64_t nonspace_ = 0;     // Text: non-whitespace bytes written (at_start: only begin's may be)
  size_t end_pos_ = 0;       // End: bytes of `end` written
  int end_space_ = 0;        // End: whitespace bytes before it
  int64_t calls_ = 0;
};

}  // namespace forge::infer
