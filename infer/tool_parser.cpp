#include "infer/tool_parser.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "infer/stop_strings.h"

namespace forge::infer {
namespace {
constexpr std::string_view kBegin = "<tool_call>", kEnd = "</tool_call>";
}  // namespace

ToolFormat tool_format_named(const std::string& name) {
  if (name == "hermes") return ToolFormat::Hermes;
  if (name == "llama3_json") return ToolFormat::Llama3Json;
  if (name == "none") return ToolFormat::None;
  throw Error(detail::cat("--tool-call-parser must be auto, hermes, llama3_json or none, got '", name, "'"));
}

const char* tool_format_name(ToolFormat f) {
  return f == ToolFormat::Hermes ? "hermes" : f == ToolFormat::Llama3Json ? "llama3_json" : "none";
}

ToolFormat detect_tool_format(const std::string& t) {
  if (t.find(kBegin) != std::string::npos) return ToolFormat::Hermes;
  // Llama 3.1+ templates write a call as '{"name": "' + name + '", "parameters": ' + arguments, in
  // Llama 3's headers (Mistral's, which also print "parameters", have none).
  if (t.find("\"parameters\"") != std::string::npos && t.find("tool_calls") != std::string::npos &&
      t.find("<|start_header_id|>") != std::string::npos)
    return ToolFormat::Llama3Json;
  return ToolFormat::None;
}

const char* arguments_key(ToolFormat f) { return f == ToolFormat::Llama3Json ? "parameters" : "arguments"; }

std::shared_ptr<const ToolTag> tool_tag(ToolFormat f, std::shared_ptr<const JsonSchema> call, int64_t max_calls) {
  auto tag = std::make_shared<ToolTag>();
  tag->schema = std::move(call);
  tag->max_calls = max_calls;
  if (f == ToolFormat::Hermes) {
    tag->begin = kBegin;
    tag->end = kEnd;
  } else {  // one bare object opening the reply; its template shows one call per turn
    tag->begin = "{";
    tag->begin_in_document = true;
    tag->at_start = true;
    tag->max_calls = 1;
  }
  return tag;
}

bool ToolCallParser::parse_call(std::string_view body, std::vector<ParsedCall>& calls) {
  using ojson = nlohmann::ordered_json;
  const ojson j = ojson::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("name") || !j["name"].is_string() ||
      !names_.count(j["name"].get<std::string>()))
    return false;
  // Llama 3 models write "parameters" as their template shows, and sometimes "arguments".
  ojson args = ojson::object();
  for (const char* k : {"arguments", "parameters"})
    if (j.contains(k)) args = j[k];
  if (!args.is_object()) return false;
  calls.push_back({j["name"].get<std::string>(), args.dump(-1, ' ', false, ojson::error_handler_t::replace)});
  ++calls_;
  after_call_ = true;
  space_.clear();
  return true;
}

void ToolCallParser::text(std::string_view s, std::string& content) {
  if (after_call_) {  // whitespace right after a call is the call's
    while (!s.empty() && is_json_space(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    if (s.empty()) return;
    after_call_ = false;
  }
  size_t body = s.size();
  while (body > 0 && is_json_space(static_cast<unsigned char>(s[body - 1]))) --body;
  if (body == 0) {
    space_ += s;
    return;
  }
  content += space_;
  content += s.substr(0, body);
  space_ = std::string(s.substr(body));
}

void ToolCallParser::push(std::string_view in, std::string& content, std::vector<ParsedCall>& calls) {
  if (f_ == ToolFormat::None) return text(in, content);
  buf_ += in;
  if (f_ == ToolFormat::Llama3Json) {
    if (mode_ == Mode::Start) {
      const size_t first = buf_.find_first_not_of(" \n\t\r");
      if (first == std::string::npos) return;  // only whitespace yet
      mode_ = buf_[first] == '{' ? Mode::Call : Mode::Text;
    }
    if (mode_ == Mode::Text) {
      text(buf_, content);
      buf_.clear();
    }
    return;  // a call is read whole at the end
  }
  for (;;) {
    if (mode_ != Mode::Call) {
      const size_t at = buf_.find(kBegin);
      if (at == std::string::npos) {
        const size_t keep = partial_tag(buf_, kBegin);
        text(std::string_view(buf_).substr(0, buf_.size() - keep), content);
        buf_.erase(0, buf_.size() - keep);
        return;
      }
      text(std::string_view(buf_).substr(0, at), content);
      space_.clear();  // whitespace before a call is dropped
      buf_.erase(0, at + kBegin.size());
      mode_ = Mode::Call;
    }
    const size_t at = buf_.find(kEnd);
    if (at == std::string::npos) return;
    const std::string body = buf_.substr(0, at);
    buf_.erase(0, at + kEnd.size());
    mode_ = Mode::Text;
    if (!parse_call(body, calls)) text(std::string(kBegin) + body + std::string(kEnd), content);
  }
}

void ToolCallParser::finish(std::string& content, std::vector<ParsedCall>& calls) {
  if (mode_ == Mode::Call) {  // no end tag: a call that ended the reply, or one cut short
    if (!parse_call(buf_, calls)) text((f_ == ToolFormat::Hermes ? std::string(kBegin) : "") + buf_, content);
  } else {
    text(buf_, content);
  }
  buf_.clear();
  if (calls_ == 0) content += space_;
  space_.clear();
}

}  // namespace forge::infer
