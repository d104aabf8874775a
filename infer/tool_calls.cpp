#include "infer/tool_calls.h"

#include <set>

#include "infer/openai_api.h"

namespace forge::infer {
namespace {
using json = nlohmann::json;

bool valid_name(const std::string& n) {
  if (n.empty() || n.size() > 64) return false;
  for (char c : n)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  return true;
}

// Points every "$ref": "#..." of a schema placed at `at` in a bigger document at its new place.
void move_refs(json& s, const std::string& at) {
  if (s.is_array()) {
    for (json& x : s) move_refs(x, at);
  } else if (s.is_object()) {
    for (auto& [k, v] : s.items()) {
      if (k == "enum" || k == "const" || k == "default" || k == "examples") continue;  // data, not schemas
      if (k == "$ref" && v.is_string() && v.get<std::string>().rfind('#', 0) == 0)
        v = "#" + at + v.get<std::string>().substr(1);
      else move_refs(v, at);
    }
  }
}

struct Function {
  std::string name;
  json parameters;
  std::shared_ptr<const JsonSchema> schema;  // the parameters compiled
};

// One call as an anyOf over the functions: {"name": its name, key: its parameters}, with each
// parameters schema's $refs moved to where it now sits (under `at`, the anyOf's place).
json call_schema(const std::vector<Function>& fns, const char* key, const std::string& at) {
  json alts = json::array();
  for (size_t i = 0; i < fns.size(); ++i) {
    json params = fns[i].parameters;
    move_refs(params, at + "/" + std::to_string(i) + "/properties/" + key);
    alts.push_back({{"type", "object"},
                    {"properties", {{"name", {{"const", fns[i].name}}}, {key, params}}},
                    {"required", {"name", key}},
                    {"additionalProperties", false}});
  }
  return {{"anyOf", alts}};
}

}  // namespace

ToolChoice parse_tools(const json& body, const nlohmann::ordered_json& ordered, Request& q, ToolFormat format) {
  ToolChoice t;
  bool parallel = true;
  if (body.contains("parallel_tool_calls") && !body["parallel_tool_calls"].is_null()) {
    if (!body["parallel_tool_calls"].is_boolean())
      throw ApiError(400, "'parallel_tool_calls' must be a boolean", "parallel_tool_calls");
    parallel = body["parallel_tool_calls"].get<bool>();
  }
  const bool has_tools = body.contains("tools") && !body["tools"].is_null();
  std::vector<Function> fns;
  std::set<std::string> names;
  if (has_tools) {
    const json& tools = body["tools"];
    if (!tools.is_array() || tools.size() > 128) throw ApiError(400, "'tools' must be a list of at most 128 tools", "tools");
    for (size_t i = 0; i < tools.size(); ++i) {
      const std::string where = "tools[" + std::to_string(i) + "]";
      const json& tool = tools[i];
      if (!tool.is_object() || tool.value("type", json()) != "function" || !tool.contains("function") ||
          !tool["function"].is_object())
        throw ApiError(400, where + " must be {\"type\": \"function\", \"function\": {...}}", where);
      for (auto& [k, v] : tool.items())
        if (k != "type" && k != "function") throw ApiError(400, where + ": unsupported field '" + k + "'", where);
      const json& f = tool["function"];
      for (auto& [k, v] : f.items()) {
        if (k == "name" || k == "description") {
          if (!v.is_string()) throw ApiError(400, where + ".function." + k + " must be a string", where);
        } else if (k == "strict") {
          if (!v.is_boolean() && !v.is_null()) throw ApiError(400, where + ".function.strict must be a boolean", where);
        } else if (k == "parameters") {
          if (!v.is_object()) throw ApiError(400, where + ".function.parameters must be a JSON Schema object", where);
        } else {
          throw ApiError(400, where + ".function: unsupported field '" + k + "'", where);
        }
      }
      const std::string name = f.value("name", "");
      if (!valid_name(name))
        throw ApiError(400, where + ".function.name must be 1 to 64 letters, digits, '_' or '-'", where);
      if (!names.insert(name).second) throw ApiError(400, where + ": a second function named '" + name + "'", where);
      // No parameters: a function of none, as OpenAI reads it.
      const json params = f.contains("parameters") ? f["parameters"] : json{{"type", "object"}, {"properties", json::object()}};
      const std::string param = where + ".function.parameters";  // refused here, naming the tool
      fns.push_back({name, params, compile_schema(params, param, param)});
    }
    t.tools = ordered["tools"];
  }
  const json choice = body.contains("tool_choice") && !body["tool_choice"].is_null()
                          ? body["tool_choice"]
                          : json(has_tools ? "auto" : "none");
  if (choice == "none") return t;
  if (!has_tools) throw ApiError(400, "'tool_choice' needs 'tools'", "tool_choice");
  if (choice == "auto") {
    if (format == ToolFormat::None)
      throw ApiError(400, "'tool_choice' \"auto\" needs the model's tool-call format, and this model's chat template "
                          "shows none that forge knows (Hermes <tool_call> tags, Llama 3 JSON): start forge serve with "
                          "--tool-call-parser hermes|llama3_json, or give \"required\", \"none\" or {\"type\": "
                          "\"function\", \"function\": {\"name\": ...}} (the default with tools is \"auto\")",
                     "tool_choice");
    t.mode = ToolChoice::Auto;
    t.format = format;
    t.names = std::move(names);
    const json call = call_schema(fns, arguments_key(format), "/anyOf");
    q.tool_tag = tool_tag(format, compile_schema(call, "tools", "tools"), parallel ? 0 : 1);
    return t;
  }
  if (choice == "required") {
    // vLLM's shape: a list of {"name", "parameters"} objects, each naming one of the functions.
    json schema = {{"type", "array"}, {"minItems", 1}, {"items", call_schema(fns, "parameters", "/items/anyOf")}};
    if (!parallel) schema["maxItems"] = 1;
    t.mode = ToolChoice::Required;
    q.json_schema = compile_schema(schema, "tools", "tools");
    return t;
  }
  if (!choice.is_object() || choice.value("type", json()) != "function" || !choice.contains("function") ||
      !choice["function"].is_object() || !choice["function"].contains("name") || !choice["function"]["name"].is_string())
    throw ApiError(400, "'tool_choice' must be \"none\", \"auto\", \"required\" or {\"type\": \"function\", "
                        "\"function\": {\"name\": ...}}", "tool_choice");
  t.name = choice["function"]["name"].get<std::string>();
  for (const Function& f : fns)
    if (f.name == t.name) {
      t.mode = ToolChoice::Named;
      q.json_schema = f.schema;
      return t;
    }
  throw ApiError(400, "'tool_choice' names the function '" + t.name + "', which is not in 'tools'", "tool_choice");
}

nlohmann::ordered_json template_tool_calls(const nlohmann::ordered_json& calls, const std::string& where) {
  using ojson = nlohmann::ordered_json;
  if (!calls.is_array()) throw ApiError(400, where + ".tool_calls must be a list", where + ".tool_calls");
  ojson out = ojson::array();
  for (const ojson& c : calls) {
    if (!c.is_object() || !c.contains("function") || !c["function"].is_object() ||
        !c["function"].contains("name") || !c["function"]["name"].is_string())
      throw ApiError(400, where + ".tool_calls: each needs function.name", where + ".tool_calls");
    ojson call = c;
    ojson& args = call["function"]["arguments"];
    if (args.is_string()) {
      ojson parsed = ojson::parse(args.get<std::string>(), nullptr, false);
      if (!parsed.is_discarded()) args = parsed;
    }
    out.push_back(call);
  }
  return out;
}

json tool_call_json(const std::string& name, const std::string& arguments) {
  std::string id = random_id("call");
  id[4] = '_';  // OpenAI's "call_..."
  return json{{"id", id}, {"type", "function"}, {"function", {{"name", name}, {"arguments", arguments}}}};
}

json tool_call_piece(const ParsedCall& piece) {
  json tc = piece.name.empty() ? json{{"function", {{"arguments", piece.arguments}}}}
                               : tool_call_json(piece.name, piece.arguments);
  tc["index"] = piece.index;
  return tc;
}

json chat_message(const ToolChoice& t, const std::string& text, std::string& finish) {
  json msg = {{"role", "assistant"}, {"content", text}};
  if (t.mode == ToolChoice::None) return msg;
  json calls = json::array();
  if (t.mode == ToolChoice::Auto) {
    ToolCallParser p(t.format, t.names);
    std::string content;
    std::vector<ParsedCall> parsed;
    p.push(text, content, parsed);
    p.finish(content, parsed);
    if (parsed.empty()) return msg;
    for (const ParsedCall& c : parsed) calls.push_back(tool_call_json(c.name, c.arguments));
    msg["content"] = content.empty() ? json() : json(content);
    msg["tool_calls"] = calls;
    if (finish == "stop") finish = "tool_calls";
    return msg;
  }
  if (t.mode == ToolChoice::Named) {
    if (finish != "stop") return msg;  // cut short: the arguments would not parse
    calls.push_back(tool_call_json(t.name, text));
  } else {
    const json list = json::parse(text, nullptr, false);
    if (list.is_discarded() || !list.is_array()) return msg;
    for (const json& c : list) calls.push_back(tool_call_json(c["name"].get<std::string>(), c["parameters"].dump()));
    finish = "tool_calls";
  }
  msg["content"] = nullptr;
  msg["tool_calls"] = calls;
  return msg;
}

}  // namespace forge::infer
