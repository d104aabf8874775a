// Function calling's pieces: "required" wraps every function's parameters (their $refs moved with
// them) into one list schema, and a finished text becomes the tool_calls of the reply.
#include <gtest/gtest.h>

#include "infer/json_matcher.h"
#include "infer/openai_api.h"
#include "infer/tool_calls.h"
#include "tests/infer/json_match.h"

namespace forge::infer {
namespace {
using json = nlohmann::json;

const char* kBody = R"({"tools": [
  {"type": "function", "function": {"name": "tree", "parameters": {"$ref": "#/$defs/node", "$defs": {"node": {
     "type": "object", "properties": {"v": {"type": "integer"}, "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
     "required": ["v"], "additionalProperties": false}}}}},
  {"type": "function", "function": {"name": "now"}}],
  "tool_choice": "required"})";

TEST(ToolCalls, RequiredHoldsAListOfCallsToTheGivenFunctions) {
  const json body = json::parse(kBody);
  Request q;
  const ToolChoice t = parse_tools(body, nlohmann::ordered_json::parse(kBody), q);
  ASSERT_EQ(t.mode, ToolChoice::Required);
  EXPECT_TRUE(json_test::takes_whole(q.json_schema, R"([{"name": "tree", "parameters": {"v": 1, "kids": [{"v": 2, "kids": []}]}}])"));
  EXPECT_TRUE(json_test::takes_whole(q.json_schema, R"([{"name": "now", "parameters": {}}, {"name": "tree", "parameters": {"v": 3}}])"));
  EXPECT_FALSE(json_test::takes_whole(q.json_schema, R"([])"));                                             // at least one call
  EXPECT_FALSE(json_test::takes_whole(q.json_schema, R"([{"name": "now", "parameters": {"x": 1}}])"));      // now takes nothing
  EXPECT_FALSE(json_test::takes_whole(q.json_schema, R"([{"name": "tree", "parameters": {"kids": []}}])"));  // v is required
  EXPECT_FALSE(json_test::takes_whole(q.json_schema, R"([{"name": "other", "parameters": {}}])"));
  std::string finish = "stop";
  const json msg = chat_message(t, R"([{"name": "tree", "parameters": {"v": 1}}, {"name": "now", "parameters": {}}])", finish);
  EXPECT_EQ(finish, "tool_calls");
  EXPECT_TRUE(msg["content"].is_null());
  ASSERT_EQ(msg["tool_calls"].size(), 2u);
  EXPECT_EQ(msg["tool_calls"][0]["function"]["name"], "tree");
  EXPECT_EQ(json::parse(msg["tool_calls"][0]["function"]["arguments"].get<std::string>()), json::parse(R"({"v": 1})"));
  EXPECT_EQ(msg["tool_calls"][0]["id"].get<std::string>().rfind("call_", 0), 0u);
  EXPECT_NE(msg["tool_calls"][0]["id"], msg["tool_calls"][1]["id"]);
  finish = "length";  // cut short: the text stays content
  EXPECT_EQ(chat_message(t, R"([{"name": "tr)", finish)["content"], R"([{"name": "tr)");
  EXPECT_EQ(finish, "length");
}

TEST(ToolCalls, ANamedFunctionHoldsItsArguments) {
  json body = json::parse(kBody);
  body["tool_choice"] = {{"type", "function"}, {"function", {{"name", "tree"}}}};
  Request q;
  const ToolChoice t = parse_tools(body, nlohmann::ordered_json::parse(body.dump()), q);
  ASSERT_EQ(t.mode, ToolChoice::Named);
  EXPECT_TRUE(json_test::takes_whole(q.json_schema, R"({"v": 5, "kids": [{"v": 6}]})"));
  EXPECT_FALSE(json_test::takes_whole(q.json_schema, R"({"kids": []})"));
  std::string finish = "stop";
  const json msg = chat_message(t, R"({"v": 5})", finish);
  EXPECT_EQ(finish, "stop");  // as OpenAI answers a named function
  EXPECT_EQ(msg["tool_calls"][0]["function"]["arguments"], R"({"v": 5})");
  body["tool_choice"] = "none";
  Request plain;
  EXPECT_EQ(parse_tools(body, nlohmann::ordered_json::parse(body.dump()), plain).mode, ToolChoice::None);
  EXPECT_EQ(plain.json_schema, nullptr);
}

TEST(ToolCalls, TemplatesGetArgumentsAsObjectsInTheirOrder) {
  const auto calls = nlohmann::ordered_json::parse(
      R"([{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"z\": 1, \"a\": 2}"}},
          {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": "not json"}}])");
  const auto out = template_tool_calls(calls, "messages[1]");
  EXPECT_EQ(out[0]["function"]["arguments"].dump(), R"({"z":1,"a":2})");
  EXPECT_EQ(out[1]["function"]["arguments"], "not json");
  EXPECT_THROW(template_tool_calls(nlohmann::ordered_json::parse(R"([{"function": {}}])"), "m"), ApiError);
}

}  // namespace
}  // namespace forge::infer
