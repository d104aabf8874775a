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

// A call read out of a reply, or the next piece of one: `name` is set in a call's first piece only,
// and the pieces' `arguments` joined are the arguments' JSON text (an object) as the model wrote it.
struct ParsedCall {
  int64_t index = 0;  // the call's number in the reply
  std::string name, arguments;
};

// Reads a reply as it streams. Text is handed on as content as soon as it cannot be the start of a
// call; whitespace around calls is dropped; a call that does not parse or names no given function
// stays content, as written. A reply without calls comes out byte for byte.
//
// Held (the default), each call comes out whole once it is read and checked. Live, a call goes
// out as it is written, as OpenAI streams calls: its name once the name is read (and is a given
// function), then its arguments in pieces; the check at its end can then only stop it, so a live
// call that is cut short (max_tokens, a stop string) stays a call with the pieces already sent.
class ToolCallParser {
 public:
  ToolCallParser(ToolFormat f, std::set<std::string> names, bool live = false)
      : f_(f), names_(std::move(names)), live_(live) {}
  // New text in; content that may be shown now and calls (or pieces) are appended to the outputs.
  void push(std::string_view text, std::string& content, std::vector<ParsedCall>& calls);
  // The reply has ended: what was held back comes out.
  void finish(std::string& content, std::vector<ParsedCall>& calls);
  int64_t calls() const { return calls_; }

 private:
  // Where a call's JSON object is, read byte by byte: its "name" and arguments values (spans of
  // the call's text) and whether the object has closed. Bytes no JSON could hold (a '<' outside
  // strings, a first byte other than '{') mark it broken.
  struct Scan {
    size_t pos = 0;  // bytes read
    int depth = 0;
    bool in_string = false, escape = false, broken = false, closed = false;
    enum class Slot { Key, Colon, Value, After } slot = Slot::Key;
    size_t key_begin = 0, value_begin = std::string::npos, last = 0;
    std::string key;  // the member being read
    size_t name_begin = 0, name_end = 0, args_begin = std::string::npos, args_end = std::string::npos;
    size_t end = 0;   // closed: one past the object's last byte
    void read(std::string_view call);  // reads call[pos:]
    void value_ends(size_t end);
    size_t open_arguments() const;  // where arguments being read begin (npos: none)
  };
  void open_call();
  void read_call(std::vector<ParsedCall>& calls);  // scans what came; live: the call's new pieces out
  bool check_call(std::string_view body, ParsedCall& call);  // parses and checks a whole call
  // A call's text is whole (or the reply ended): out as a call, or false when it is text after all.
  bool call_ends(std::string_view body, std::vector<ParsedCall>& calls);
  void text(std::string_view s, std::string& content);  // content, with its trailing whitespace held

  ToolFormat f_;
  std::set<std::string> names_;
  bool live_;
  enum class Mode { Start, Text, Call } mode_ = Mode::Start;
  std::string buf_;    // text not yet decided on (Call: the call's text so far)
  std::string space_;  // trailing whitespace held: dropped if a call follows
  bool after_call_ = false;
  int64_t calls_ = 0;
  Scan scan_;
  bool started_ = false;  // live: the current call's name is out
  size_t sent_ = 0;       // live: bytes of the current call's arguments out
};

}  // namespace forge::infer
