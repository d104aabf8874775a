// Function calling on /v1/chat/completions: `tools`, `tool_choice` and `parallel_tool_calls` as
// OpenAI takes them. A named function (`{"type": "function", "function": {"name": ...}}`) or
// "required" holds the output to the functions' parameter schemas (guided JSON), and the reply
// carries `tool_calls` instead of content. "auto" (the default with tools) lets the model answer in
// words or call functions in its family's format (tool_parser.h): a call it opens is held to the
// schemas (tool_guide.h) and read back out of the text.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "infer/engine.h"
#include "infer/tool_parser.h"

namespace forge::infer {

struct ToolChoice {
  enum Mode { None, Named, Required, Auto } mode = None;
  std::string name;     // Named: the function
  ToolFormat format = ToolFormat::None;  // Auto: the model's call format
  std::set<std::string> names;           // Auto: the functions given
  nlohmann::ordered_json tools;  // the request's tools in their key order (null: none), for the chat template
};

// Reads body's tools / tool_choice / parallel_tool_calls (ordered: the same body keeping key order,
// as templates print it); for Named and Required sets q.json_schema, for Auto q.tool_tag (calls in
// `format`, the server's; None refuses "auto"). Throws ApiError (400) naming the field.
ToolChoice parse_tools(const nlohmann::json& body, const nlohmann::ordered_json& ordered, Request& q,
                       ToolFormat format = ToolFormat::None);

// An assistant message's tool_calls as chat templates take them (transformers' convention):
// arguments that parse as JSON are handed over as objects.
nlohmann::ordered_json template_tool_calls(const nlohmann::ordered_json& calls, const std::string& where);

// A finished chat choice's message: the text as content, or under a tool choice the calls it holds
// (each with a fresh id). finish becomes "tool_calls" for "required" and for "auto" replies that call;
// output cut short stays content.
nlohmann::json chat_message(const ToolChoice& t, const std::string& text, std::string& finish);
// One call in a reply's tool_calls: {"id": "call_...", "type": "function", "function": {...}}.
nlohmann::json tool_call_json(const std::string& name, const std::string& arguments);
// A streamed delta's piece of a call, with its index: the call whole with a fresh id when the piece
// names it (its first), else {"index", "function": {"arguments"}}.
nlohmann::json tool_call_piece(const ParsedCall& piece);

}  // namespace forge::infer
