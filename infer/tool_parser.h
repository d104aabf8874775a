// Tool-call formats of model families, and reading calls back out of an "auto" reply's text as
// vLLM's --tool-call-parser does. Hermes (Qwen 2.5 and 3, Hermes, many finetunes) wraps each call in
// <tool_call>{"name": ..., "arguments": {...}}</tool_call> among ordinary text; Llama 3.1+ answers
// a call with one bare JSON object {"name": ..., "parameters": {...}} and nothing else.
#pragma once
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "infer/tool_guide.h"

namespace forge::infer {

enum class ToolFormat { None, Hermes, Llama3Json };

// "hermes", "llama3_json" or "none"; anything else throws naming the choices.
ToolFormat tool_format_named(const std::string& name);
const char* tool_format_name(ToolFormat f);
// The format a chat template shows tool calls in; None when it shows none forge knows.
ToolFormat detect_tool_format(const std::string& chat_template);
// The key a call's arguments sit under: "arguments" (Hermes) or "parameters" (Llama 3).
const char* arguments_key(ToolFormat f);
// How the engine holds calls of this format to `call` (the schema of one call object).
std::shared_ptr<const ToolTag> tool_tag(ToolFormat f, std::shared_ptr<const JsonSchema> call, int64_t max_calls);

struct ParsedCall {
  std::string name, arguments;  // arguments: JSON text of an object
};

// Reads a reply as it streams. Text is handed on as content as soon as it cannot be the start of a
// call; whitespace around calls is dropped; a call that does not parse or names no given function
// stays content, as written. A reply without calls comes out byte for byte.
class ToolCallParser {
 public:
  ToolCallParser(ToolFormat f, std::set<std::string> names) : f_(f), names_(std::move(names)) {}
  // New text in; content that may be shown now and calls finished are appended to the outputs.
  void push(std::string_view text, std::string& content, std::vector<ParsedCall>& calls);
  // The reply has ended: what was held back comes out.
  void finish(std::string& content, std::vector<ParsedCall>& calls);
  int64_t calls() const { return calls_; }

 private:
  bool parse_call(std::string_view body, std::vector<ParsedCall>& calls);
  void text(std::string_view s, std::string& content);  // content, with its trailing whitespace held

  ToolFormat f_;
  std::set<std::string> names_;
  enum class Mode { Start, Text, Call } mode_ = Mode::Start;
  std::string buf_;    // text not yet decided on
  std::string space_;  // trailing whitespace held: dropped if a call follows
  bool after_call_ = false;
  int64_t calls_ = 0;
};

}  // namespace forge::infer
