// Function calling on /v1/chat/completions: `tools`, `tool_choice` and `parallel_tool_calls` as
// OpenAI takes them. A named function (`{"type": "function", "function": {"name": ...}}`) or
// "required" holds the output to the functions' parameter schemas (guided JSON), and the reply
// carries `tool_calls` instead of content. "auto" needs a model-specific parser of free text and
// is refused, as vLLM refuses it without --tool-call-parser.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "infer/engine.h"

namespace forge::infer {

struct ToolChoice {
  enum Mode { None, Named, Required } mode = None;
  std::string name;     // Named: the function
  nlohmann::ordered_json tools;  // the request's tools in their key order (null: none), for the chat template
};

// Reads body's tools / tool_choice / parallel_tool_calls (ordered: the same body keeping key order,
// as templates print it); for Named and Required sets q.json_schema. Throws ApiError (400) naming
// the field.
ToolChoice parse_tools(const nlohmann::json& body, const nlohmann::ordered_json& ordered, Request& q);

// An assistant message's tool_calls as chat templates take them (transformers' convention):
// arguments that parse as JSON are handed over as objects.
nlohmann::ordered_json template_tool_calls(const nlohmann::ordered_json& calls, const std::string& where);

// A finished chat choice's message: the text as content, or under a tool choice the calls it holds
// (each with a fresh id). finish becomes "tool_calls" for "required"; output cut short stays content.
nlohmann::json chat_message(const ToolChoice& t, const std::string& text, std::string& finish);

}  // namespace forge::infer
