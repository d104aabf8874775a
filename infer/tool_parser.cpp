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

void ToolCallParser::Scan::value_ends(size_t e) {
  if (key == "name") {
    name_begin = value_begin;
    name_end = e;
  } else if (key == "arguments" || key == "parameters") {
    args_begin = value_begin;
    args_end = e;
  }
  value_begin = std::string::npos;
  slot = Slot::After;
}

size_t ToolCallParser::Scan::open_arguments() const {
  return slot == Slot::Value && value_begin != std::string::npos && (key == "arguments" || key == "parameters")
             ? value_begin : std::string::npos;
}

void ToolCallParser::Scan::read(std::string_view t) {
  for (; pos < t.size() && !closed && !broken; ++pos) {
    const char c = t[pos];
    if (in_string) {
      if (escape) {
        escape = false;
      } else if (c == '\\') {
        escape = true;
      } else if (c == '"') {
        in_string = false;
        if (depth == 1 && slot == Slot::Key) {
          const auto k = nlohmann::json::parse(t.substr(key_begin, pos + 1 - key_begin), nullptr, false);
          key = k.is_string() ? k.get<std::string>() : "";
          slot = Slot::Colon;
        } else if (depth == 1 && slot == Slot::Value) {
          value_ends(pos + 1);
        }
      }
      continue;
    }
    if (is_json_space(static_cast<unsigned char>(c))) continue;
    if (c == '<' || (depth == 0 && c != '{')) {  // no JSON object holds this
      broken = true;
      return;
    }
    if (depth == 0) {
      depth = 1;
      continue;
    }
    if (depth > 1) {  // inside a container value
      if (c == '"') in_string = true;
      else if (c == '{' || c == '[') ++depth;
      else if ((c == '}' || c == ']') && --depth == 1) value_ends(pos + 1);
      continue;
    }
    if (slot == Slot::Value && value_begin == std::string::npos) {  // a member's value starts
      value_begin = pos;
      if (c == '"') in_string = true;
      else if (c == '{' || c == '[') depth = 2;
      else last = pos + 1;  // a number or literal
      continue;
    }
    if (slot == Slot::Value && c != ',' && c != '}') {  // a number or literal goes on
      last = pos + 1;
      continue;
    }
    if (slot == Slot::Value) value_ends(last);
    if (c == '"' && slot == Slot::Key) {
      in_string = true;
      key_begin = pos;
    } else if (c == ':' && slot == Slot::Colon) {
      slot = Slot::Value;
    } else if (c == ',') {
      slot = Slot::Key;
    } else if (c == '}') {
      closed = true;
      end = pos + 1;
    }
  }
}

bool ToolCallParser::check_call(std::string_view body, ParsedCall& call) {
  using ojson = nlohmann::ordered_json;
  const ojson j = ojson::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("name") || !j["name"].is_string() ||
      !names_.count(j["name"].get<std::string>()))
    return false;
  // Llama 3 models write "parameters" as their template shows, and sometimes "arguments". The
  // arguments are returned as written (OpenAI's, and a streamed call's pieces, are too).
  call.name = j["name"].get<std::string>();
  call.arguments = scan_.args_end == std::string::npos
                       ? "{}" : std::string(body.substr(scan_.args_begin, scan_.args_end - scan_.args_begin));
  return ojson::parse(call.arguments, nullptr, false).is_object();
}

bool ToolCallParser::call_ends(std::string_view body, std::vector<ParsedCall>& calls) {
  ParsedCall call;
  call.index = calls_;
  if (check_call(body, call)) {
    if (started_) {  // live: the name and the arguments' first pieces are out
      call.name.clear();
      call.arguments.erase(0, std::min(sent_, call.arguments.size()));
    }
    if (!started_ || !call.arguments.empty()) calls.push_back(std::move(call));
  } else if (!started_) {
    return false;
  }
  ++calls_;  // a live call whose check fails (cut short) stands as sent
  after_call_ = true;
  space_.clear();
  return true;
}

void ToolCallParser::open_call() {
  mode_ = Mode::Call;
  scan_ = Scan();
  started_ = false;
  sent_ = 0;
}

void ToolCallParser::read_call(std::vector<ParsedCall>& calls) {
  scan_.read(buf_);
  if (!live_ || scan_.broken) return;
  ParsedCall piece;
  piece.index = calls_;
  if (!started_) {
    if (scan_.name_end == 0) return;  // the name is not read yet
    const auto name = nlohmann::json::parse(buf_.substr(scan_.name_begin, scan_.name_end - scan_.name_begin),
                                            nullptr, false);
    if (!name.is_string() || !names_.count(name.get<std::string>())) return;  // not a call: decided at its end
    piece.name = name.get<std::string>();
    started_ = true;
  }
  const size_t open = scan_.open_arguments();
  const size_t begin = scan_.args_end != std::string::npos ? scan_.args_begin : open;
  const size_t end = scan_.args_end != std::string::npos ? scan_.args_end : scan_.pos;
  if (begin != std::string::npos && end > begin + sent_) {
    piece.arguments = buf_.substr(begin + sent_, end - begin - sent_);
    sent_ = end - begin;
  }
  if (!piece.name.empty() || !piece.arguments.empty()) calls.push_back(std::move(piece));
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
      if (buf_[first] == '{') open_call();
      else mode_ = Mode::Text;
    }
    if (mode_ == Mode::Text) {
      text(buf_, content);
      buf_.clear();
    } else {
      read_call(calls);  // the call is the whole reply: it ends with it
    }
    return;
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
      open_call();
    }
    read_call(calls);
    // The end tag after the object (a string in it may hold the tag's text); anywhere in what
    // cannot be JSON.
    if (!scan_.closed && !scan_.broken) return;
    const size_t at = buf_.find(kEnd, scan_.closed ? scan_.end : 0);
    if (at == std::string::npos) return;
    const std::string body = buf_.substr(0, at);
    buf_.erase(0, at + kEnd.size());
    mode_ = Mode::Text;
    if (!call_ends(body, calls)) text(std::string(kBegin) + body + std::string(kEnd), content);
  }
}

void ToolCallParser::finish(std::string& content, std::vector<ParsedCall>& calls) {
  if (mode_ == Mode::Call) {  // no end tag: a call that ended the reply, or one cut short
    read_call(calls);
    if (!call_ends(buf_, calls)) text((f_ == ToolFormat::Hermes ? std::string(kBegin) : "") + buf_, content);
  } else {
    text(buf_, content);
  }
  buf_.clear();
  if (calls_ == 0) content += space_;
  space_.clear();
}

}  // namespace forge::infer
