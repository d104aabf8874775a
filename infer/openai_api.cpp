// OpenAI request parsing and response pieces (see openai_api.h).
#include "infer/openai_api.h"

#include <random>
#include <set>

#include "data/chat_template.h"
#include "infer/tool_calls.h"

namespace forge::infer {
namespace {
using json = nlohmann::json;

const std::set<std::string> kCommon = {"model", "max_tokens", "temperature", "top_p", "top_k", "min_p", "n",
                                       "stream", "stream_options", "stop", "seed", "presence_penalty",
                                       "frequency_penalty", "repetition_penalty", "logprobs", "user",
                                       "ignore_eos", "stop_token_ids", "skip_special_tokens", "logit_bias",
                                       "min_tokens", "response_format"};
const std::set<std::string> kCompletionOnly = {"prompt", "echo"};
const std::set<std::string> kChatOnly = {"messages", "max_completion_tokens", "top_logprobs", "tools", "tool_choice",
                                         "parallel_tool_calls", "chat_template_kwargs", "add_generation_prompt",
                                         "continue_final_message"};

double number(const json& body, const char* key, double lo, double hi, double fallback) {
  if (!body.contains(key) || body[key].is_null()) return fallback;
  const json& v = body[key];
  if (!v.is_number()) throw ApiError(400, std::string("'") + key + "' must be a number", key);
  const double x = v.get<double>();
  if (!(x >= lo && x <= hi))
    throw ApiError(400, std::string("'") + key + "' must be between " + json(lo).dump() + " and " + json(hi).dump() +
                            ", got " + v.dump(), key);
  return x;
}
int64_t integer(const json& body, const char* key, int64_t lo, int64_t hi, int64_t fallback) {
  if (!body.contains(key) || body[key].is_null()) return fallback;
  const json& v = body[key];
  if (!v.is_number_integer()) throw ApiError(400, std::string("'") + key + "' must be an integer", key);
  const bool out_of_range = v.is_number_unsigned()
                                ? (v.get<uint64_t>() > uint64_t(hi) || (lo > 0 && v.get<uint64_t>() < uint64_t(lo)))
                                : (v.get<int64_t>() < lo || v.get<int64_t>() > hi);
  if (out_of_range)
    throw ApiError(400, std::string("'") + key + "' must be between " + std::to_string(lo) + " and " +
                            std::to_string(hi) + ", got " + v.dump(), key);
  return v.get<int64_t>();
}
bool boolean(const json& body, const char* key, bool fallback) {
  if (!body.contains(key) || body[key].is_null()) return fallback;
  if (!body[key].is_boolean()) throw ApiError(400, std::string("'") + key + "' must be a boolean", key);
  return body[key].get<bool>();
}

// response_format {"type": "json_schema", "json_schema": {...}}: the schema, compiled.
std::shared_ptr<const JsonSchema> response_schema(const json& rf) {
  const char* param = "response_format.json_schema";
  if (!rf.contains("json_schema") || !rf["json_schema"].is_object())
    throw ApiError(400, "'response_format' of type 'json_schema' needs a 'json_schema' object", param);
  const json& js = rf["json_schema"];
  for (auto& [k, v] : js.items()) {
    if (k == "name" || k == "description") {
      if (!v.is_string()) throw ApiError(400, "'" + std::string(param) + "." + k + "' must be a string", param);
    } else if (k == "strict") {
      if (!v.is_boolean() && !v.is_null()) throw ApiError(400, std::string("'") + param + ".strict' must be a boolean", param);
    } else if (k != "schema") {
      throw ApiError(400, "'" + std::string(param) + "' has an unknown field '" + k + "'", param);
    }
  }
  if (!js.contains("schema")) throw ApiError(400, std::string("'") + param + ".schema' is required", param);
  return compile_schema(js["schema"], std::string(param) + ".schema", param);
}

std::vector<int64_t> token_list(const json& v, const char* param, int64_t vocab) {
  std::vector<int64_t> out;
  for (auto& t : v) {
    if (!t.is_number_integer()) throw ApiError(400, std::string("'") + param + "' must hold token ids", param);
    const int64_t id = t.get<int64_t>();
    if (id < 0 || id >= vocab)
      throw ApiError(400, "token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                              std::to_string(vocab) + ")", param);
    out.push_back(id);
  }
  return out;
}

std::vector<std::vector<int64_t>> completion_prompts(const json& p, const data::Tokenizer& tok, int64_t vocab) {
  if (p.is_string()) return {tok.encode(p.get<std::string>(), true)};
  if (!p.is_array() || p.empty())
    throw ApiError(400, "'prompt' must be a string, a list of strings, or token ids", "prompt");
  if (p[0].is_number_integer()) return {token_list(p, "prompt", vocab)};
  std::vector<std::vector<int64_t>> out;
  for (auto& e : p) {
    if (e.is_string()) out.push_back(tok.encode(e.get<std::string>(), true));
    else if (e.is_array()) out.push_back(token_list(e, "prompt", vocab));
    else throw ApiError(400, "'prompt' must be a string, a list of strings, or token ids", "prompt");
  }
  if (out.size() > 64) throw ApiError(400, "at most 64 prompts per request", "prompt");
  return out;
}

struct ChatPrompt {
  std::string text;
  std::string final_content;  // the last message's text
  bool continued = false;     // the last message is left open (continue_final_message)
};

// The chat prompt of a chat body (ordered: the same body keeping key order; templates print
// tool-call arguments as given): its messages, chat_template_kwargs (e.g. Qwen 3's
// enable_thinking), and vLLM's add_generation_prompt / continue_final_message (prefill: the model
// continues the last message instead of opening a new one). tools: for the template.
ChatPrompt chat_prompt(const json& body, const data::ojson& ordered, const data::Tokenizer& tok,
                       const data::ojson& tools) {
  ChatPrompt p;
  p.continued = boolean(body, "continue_final_message", false);
  const bool add_generation_prompt = boolean(body, "add_generation_prompt", !p.continued);
  if (p.continued && add_generation_prompt)
    throw ApiError(400, "'continue_final_message' and 'add_generation_prompt' cannot both be true",
                   "continue_final_message");
  const data::ojson messages = ordered.value("messages", data::ojson());
  const data::ojson kwargs = ordered.value("chat_template_kwargs", data::ojson());
  if (!messages.is_array() || messages.empty()) throw ApiError(400, "'messages' must be a non-empty list", "messages");
  data::ojson msgs = data::ojson::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const data::ojson& m = messages[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) throw ApiError(400, where + " must be an object", where);
    if (!m.contains("role") || !m["role"].is_string())
      throw ApiError(400, where + ".role must be a string", where + ".role");
    const std::string role = m["role"];
    if (role != "system" && role != "user" && role != "assistant" && role != "developer" && role != "tool")
      throw ApiError(400, where + ".role '" + role + "' is not one of system, developer, user, assistant, tool",
                     where + ".role");
    for (auto& [k, v] : m.items())
      if (k != "role" && k != "content" && k != "name" && !(k == "tool_calls" && role == "assistant") &&
          !(k == "tool_call_id" && role == "tool") &&
          !((k == "reasoning" || k == "reasoning_content") && role == "assistant"))
        throw ApiError(400, where + ": unsupported field '" + k + "'", where + "." + k);
    std::string text;
    const data::ojson c = m.value("content", data::ojson());
    if (c.is_string()) {
      text = c.get<std::string>();
    } else if (c.is_array()) {  // content parts: text only
      for (auto& part : c) {
        if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
          throw ApiError(400, where + ".content: only parts of type 'text' are supported", where + ".content");
        text += part["text"].get<std::string>();
      }
    } else if (!(c.is_null() && role == "assistant")) {
      throw ApiError(400, where + ".content must be a string or a list of text parts", where + ".content");
    }
    data::ojson msg = {{"role", role == "developer" ? "system" : role}, {"content", text}};
    if (m.contains("tool_calls") && !m["tool_calls"].is_null())
      msg["tool_calls"] = template_tool_calls(m["tool_calls"], where);
    // A reasoning model's earlier thinking, as vLLM (`reasoning`) or DeepSeek (`reasoning_content`)
    // return it; templates read reasoning_content (Qwen 3 shows it for turns after the last query).
    for (const char* k : {"reasoning", "reasoning_content"}) {
      if (!m.contains(k) || m[k].is_null()) continue;
      if (!m[k].is_string()) throw ApiError(400, where + "." + k + " must be a string", where + "." + k);
      if (msg.contains("reasoning_content") && msg["reasoning_content"] != m[k])
        throw ApiError(400, where + ": 'reasoning' and 'reasoning_content' differ; give one", where + "." + k);
      msg["reasoning_content"] = m[k].get<std::string>();
    }
    if (m.contains("tool_call_id")) {
      if (!m["tool_call_id"].is_string())
        throw ApiError(400, where + ".tool_call_id must be a string", where + ".tool_call_id");
      msg["tool_call_id"] = m["tool_call_id"].get<std::string>();
    }
    msgs.push_back(msg);
  }
  if (tok.chat_template().empty())
    throw ApiError(400, "this model has no chat template; use /v1/completions", "messages");
  data::ojson extra = data::ojson::object();
  if (!kwargs.is_null()) {
    if (!kwargs.is_object()) throw ApiError(400, "'chat_template_kwargs' must be an object", "chat_template_kwargs");
    for (auto& [k, v] : kwargs.items()) {
      if (k == "messages" || k == "tools" || k == "add_generation_prompt")
        throw ApiError(400, "'chat_template_kwargs' may not set '" + k + "' (the request's own field sets it)",
                       "chat_template_kwargs");
      extra[k] = v;
    }
  }
  if (!tools.is_null()) extra["tools"] = tools;  // as transformers passes them
  p.final_content = msgs.back()["content"];
  try {
    p.text = data::apply_chat_template(tok, msgs, add_generation_prompt, extra);
  } catch (const std::exception& e) {
    throw ApiError(400, std::string("the chat template rejected the messages: ") + e.what(), "messages");
  }
  try {
    if (p.continued) p.text = data::continue_final_message(p.text, p.final_content);
  } catch (const Error& e) {
    throw ApiError(400, e.what(), "continue_final_message");
  }
  return p;
}

// Where a reasoning model's reply to p starts: as the prompt leaves it, but a prefilled reply
// already chose: it is inside the reasoning it opened, else in the answer.
ReasoningSplitter::Phase reply_phase(const ChatPrompt& p) {
  const ReasoningSplitter::Phase phase = ReasoningSplitter::after_prompt(p.text);
  if (!p.continued || phase != ReasoningSplitter::Phase::Start || p.final_content.empty()) return phase;
  ReasoningSplitter s;
  std::string thought, answer;
  s.push(p.final_content, thought, answer);
  return s.phase() == ReasoningSplitter::Phase::Inside ? s.phase() : ReasoningSplitter::Phase::Content;
}

// /tokenize and /detokenize: the body, an object of only the given fields whose model (optional
// there) is one that is served.
void check_route_body(const json& body, const std::set<std::string>& fields,
                      const std::function<int64_t(const std::string&)>& resolve_model) {
  if (body.is_discarded() || !body.is_object()) throw ApiError(400, "the body must be a JSON object");
  for (auto& [k, v] : body.items())
    if (!fields.count(k)) throw ApiError(400, "unsupported field '" + k + "'", k);
  if (body.contains("model") && (!body["model"].is_string() || resolve_model(body["model"]) < 0))
    throw ApiError(404, "the model " + body["model"].dump() + " does not exist", "model", "invalid_request_error",
                   "model_not_found");
}
}  // namespace

std::string error_body(const std::string& message, const std::string& type, const std::string& param,
                       const std::string& code) {
  json e = {{"message", message}, {"type", type}, {"param", param.empty() ? json() : json(param)},
            {"code", code.empty() ? json() : json(code)}};
  return dump(json{{"error", e}});
}

std::shared_ptr<const JsonSchema> compile_schema(const json& schema, const std::string& where, const std::string& param) {
  try {
    return JsonSchema::compile(schema);
  } catch (const Error& e) {
    throw ApiError(400, where + ": " + e.what(), param);
  }
}

std::string random_id(const char* prefix) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char b[40];
  std::snprintf(b, sizeof(b), "%s-%016llx", prefix, static_cast<unsigned long long>(rng()));
  return b;
}

std::string dump(const nlohmann::json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

ApiRequest parse_request(Endpoint kind, const std::string& body_text, const Engine& engine,
                         const std::function<int64_t(const std::string&)>& resolve_model,
                         const ModelDefaults& model) {
  json body;
  try {
    body = json::parse(body_text);
  } catch (const std::exception& e) {
    throw ApiError(400, std::string("the body is not valid JSON: ") + e.what());
  }
  if (!body.is_object()) throw ApiError(400, "the body must be a JSON object");
  const auto& only = kind == Endpoint::chat ? kChatOnly : kCompletionOnly;
  for (auto& [k, v] : body.items())
    if (!kCommon.count(k) && !only.count(k)) throw ApiError(400, "unsupported field '" + k + "'", k);
  ApiRequest r;
  r.kind = kind;
  if (!body.contains("model") || !body["model"].is_string()) throw ApiError(400, "'model' must be a string", "model");
  r.model = body["model"];
  r.adapter = resolve_model(r.model);
  if (r.adapter < 0) throw ApiError(404, "the model '" + r.model + "' does not exist", "model", "invalid_request_error", "model_not_found");
  const data::Tokenizer& tok = engine.tokenizer();
  const int64_t vocab = engine.tokenizer().vocab_size();
  Request& q = r.base;
  q.adapter = r.adapter;
  SamplingParams& s = q.sampling;
  const models::GenerationDefaults& g = model.sampling;  // fields left out take the model's recommendation
  s.temperature = number(body, "temperature", 0, 2, g.temperature.value_or(1.0));
  s.top_p = number(body, "top_p", 1e-9, 1, g.top_p.value_or(1.0));
  s.top_k = integer(body, "top_k", -1, 1 << 30, g.top_k.value_or(0));
  if (s.top_k < 0) s.top_k = 0;
  s.min_p = number(body, "min_p", 0, 1, g.min_p.value_or(0.0));
  s.presence_penalty = number(body, "presence_penalty", -2, 2, 0.0);
  s.frequency_penalty = number(body, "frequency_penalty", -2, 2, 0.0);
  s.repetition_penalty = number(body, "repetition_penalty", 1e-6, 100, g.repetition_penalty.value_or(1.0));
  if (body.contains("seed") && !body["seed"].is_null())
    q.seed = uint64_t(integer(body, "seed", INT64_MIN, INT64_MAX, 0));
  r.n = integer(body, "n", 1, 16, 1);
  r.stream = boolean(body, "stream", false);
  if (body.contains("stream_options") && !body["stream_options"].is_null()) {
    const json& so = body["stream_options"];
    if (!so.is_object()) throw ApiError(400, "'stream_options' must be an object", "stream_options");
    for (auto& [k, v] : so.items())
      if (k != "include_usage") throw ApiError(400, "unsupported field 'stream_options." + k + "'", "stream_options");
    r.include_usage = boolean(so, "include_usage", false);
  }
  if (body.contains("stop") && !body["stop"].is_null()) {
    const json& st = body["stop"];
    if (st.is_string()) q.stop = {st.get<std::string>()};
    else if (st.is_array() && st.size() <= 16 && std::all_of(st.begin(), st.end(), [](const json& x) { return x.is_string(); }))
      q.stop = st.get<std::vector<std::string>>();
    else throw ApiError(400, "'stop' must be a string or a list of at most 16 strings", "stop");
    for (auto& x : q.stop)
      if (x.size() > 1024) throw ApiError(400, "stop strings are limited to 1024 bytes", "stop");
  }
  if (body.contains("logit_bias") && !body["logit_bias"].is_null()) {
    // OpenAI's shape: {"token id": bias in [-100, 100]}; the ids are of this model's tokenizer.
    const json& lb = body["logit_bias"];
    if (!lb.is_object()) throw ApiError(400, "'logit_bias' must be an object of token id -> bias", "logit_bias");
    if (lb.size() > 1024) throw ApiError(400, "'logit_bias' is limited to 1024 tokens", "logit_bias");
    for (auto& [k, v] : lb.items()) {
      size_t used = 0;
      long long id = -1;
      try {
        id = std::stoll(k, &used);
      } catch (const std::exception&) {
      }
      if (used != k.size() || k.empty() || id < 0 || id >= vocab)
        throw ApiError(400, "'logit_bias' key '" + k + "' is not a token id of this model (0 to " +
                                std::to_string(vocab - 1) + ")", "logit_bias");
      if (!v.is_number() || !(v.get<double>() >= -100 && v.get<double>() <= 100))
        throw ApiError(400, "'logit_bias' values must be numbers between -100 and 100", "logit_bias");
      s.logit_bias.emplace_back(int64_t(id), float(v.get<double>()));
    }
  }
  if (body.contains("response_format") && !body["response_format"].is_null()) {
    // {"type": "text"}, {"type": "json_object"} (JSON mode) or {"type": "json_schema", "json_schema":
    // {"name", "description", "schema", "strict"}} (structured outputs; strict or not, it is held).
    const json& rf = body["response_format"];
    if (!rf.is_object() || !rf.contains("type") || !rf["type"].is_string())
      throw ApiError(400, "'response_format' must be an object with a 'type'", "response_format");
    const std::string type = rf["type"].get<std::string>();
    if (type != "text" && type != "json_object" && type != "json_schema")
      throw ApiError(400, "'response_format' type must be 'text', 'json_object' or 'json_schema', got '" + type + "'",
                     "response_format");
    for (auto& [k, v] : rf.items())
      if (k != "type" && (k != "json_schema" || type != "json_schema"))
        throw ApiError(400, "'response_format' has an unknown field '" + k + "'", "response_format");
    if (type == "json_object") q.json_schema = JsonSchema::any_object();
    if (type == "json_schema") q.json_schema = response_schema(rf);
  }
  q.min_tokens = integer(body, "min_tokens", 0, INT32_MAX, 0);
  q.ignore_eos = boolean(body, "ignore_eos", false);
  q.skip_special_tokens = boolean(body, "skip_special_tokens", true);
  if (body.contains("stop_token_ids") && !body["stop_token_ids"].is_null()) {
    if (!body["stop_token_ids"].is_array()) throw ApiError(400, "'stop_token_ids' must be a list of token ids", "stop_token_ids");
    q.stop_token_ids = token_list(body["stop_token_ids"], "stop_token_ids", vocab);
  }
  if (body.contains("user") && !body["user"].is_null() && !body["user"].is_string())
    throw ApiError(400, "'user' must be a string", "user");

  if (kind == Endpoint::completions) {
    if (!body.contains("prompt")) throw ApiError(400, "'prompt' is required", "prompt");
    r.prompts = completion_prompts(body["prompt"], tok, vocab);
    r.echo = boolean(body, "echo", false);
    q.logprobs = integer(body, "logprobs", 0, 20, -1);
  } else {
    if (!body.contains("messages")) throw ApiError(400, "'messages' is required", "messages");
    const bool guided = q.json_schema != nullptr;
    const data::ojson ordered = data::ojson::parse(body_text);
    r.tools = parse_tools(body, ordered, q, model.tool_format);
    if (guided && r.tools.mode != ToolChoice::None)
      throw ApiError(400, "'response_format' and a 'tool_choice' that calls a function: give one", "tool_choice");
    const ChatPrompt p = chat_prompt(body, ordered, tok, r.tools.tools);
    r.prompts = {tok.encode(p.text, false)};  // the template wrote the special tokens
    if (model.reasoning == ReasoningFormat::Think) q.reasoning.emplace(reply_phase(p));
    const bool lp = boolean(body, "logprobs", false);
    const int64_t top = integer(body, "top_logprobs", 0, 20, 0);
    if (body.contains("top_logprobs") && !body["top_logprobs"].is_null() && !lp)
      throw ApiError(400, "'top_logprobs' needs 'logprobs': true", "top_logprobs");
    q.logprobs = lp ? top : -1;
    if (tok.eos_id() >= 0) q.stop_token_ids.push_back(tok.eos_id());  // e.g. Llama 3's <|eot_id|>
  }
  const char* max_key = kind == Endpoint::chat && body.contains("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  const int64_t limit = engine.max_model_len();
  const int64_t max_given = integer(body, max_key, 1, INT32_MAX, -1);
  for (auto& p : r.prompts) {
    if (p.empty()) throw ApiError(400, "the prompt is empty", kind == Endpoint::chat ? "messages" : "prompt");
    const int64_t left = limit - int64_t(p.size());
    if (max_given < 0 && left < 1)
      throw ApiError(400, "this model's maximum context length is " + std::to_string(limit) + " tokens; the prompt has " +
                              std::to_string(p.size()), kind == Endpoint::chat ? "messages" : "prompt");
  }
  r.default_max_tokens = max_given < 0;
  // Left out: the model's max_new_tokens, else 16 for completions (OpenAI's) and the context for
  // chat, capped per prompt to what its context leaves.
  q.max_tokens = max_given >= 0 ? max_given : g.max_new_tokens ? *g.max_new_tokens : kind == Endpoint::completions ? 16 : limit;
  for (auto& p : r.prompts) {
    Request probe = q;
    probe.prompt = p;
    if (max_given < 0) probe.max_tokens = std::min<int64_t>(q.max_tokens, limit - int64_t(p.size()));
    std::string why = engine.check(probe);
    if (!why.empty()) throw ApiError(400, why, max_given >= 0 ? max_key : "prompt");
  }
  return r;
}

json tokenize(const std::string& body_text, const Engine& engine,
              const std::function<int64_t(const std::string&)>& resolve_model, const ModelDefaults& model) {
  const json body = json::parse(body_text, nullptr, false);
  const bool chat = body.is_object() && body.contains("messages");
  check_route_body(body, chat ? std::set<std::string>{"model", "messages", "add_generation_prompt", "continue_final_message",
                                                      "add_special_tokens", "chat_template_kwargs", "tools",
                                                      "return_token_strs"}
                              : std::set<std::string>{"model", "prompt", "add_special_tokens", "return_token_strs"},
                   resolve_model);
  const data::Tokenizer& tok = engine.tokenizer();
  std::vector<int64_t> ids;
  if (chat) {  // as a chat request renders its prompt
    const data::ojson ordered = data::ojson::parse(body_text);
    json with_choice = body;  // the tools only go to the template: no tool_choice is asked for
    if (body.contains("tools")) with_choice["tool_choice"] = "none";
    Request q;
    const ToolChoice t = parse_tools(with_choice, ordered, q, model.tool_format);
    const ChatPrompt p = chat_prompt(body, ordered, tok, t.tools);
    ids = tok.encode(p.text, boolean(body, "add_special_tokens", false));
  } else {
    if (!body.contains("prompt") || !body["prompt"].is_string())
      throw ApiError(400, "'prompt' (a string) or 'messages' is required", "prompt");
    ids = tok.encode(body["prompt"].get<std::string>(), boolean(body, "add_special_tokens", true));
  }
  json out = {{"count", ids.size()}, {"max_model_len", engine.max_model_len()}, {"tokens", ids},
              {"token_strs", nullptr}};
  if (boolean(body, "return_token_strs", false)) {
    out["token_strs"] = json::array();
    for (int64_t id : ids) out["token_strs"].push_back(tok.decode({id}, false, false));
  }
  return out;
}

json detokenize(const std::string& body_text, const Engine& engine,
                const std::function<int64_t(const std::string&)>& resolve_model) {
  const json body = json::parse(body_text, nullptr, false);
  check_route_body(body, {"model", "tokens"}, resolve_model);
  if (!body.contains("tokens") || !body["tokens"].is_array())
    throw ApiError(400, "'tokens' must be a list of token ids", "tokens");
  const auto ids = token_list(body["tokens"], "tokens", engine.tokenizer().vocab_size());
  return {{"prompt", engine.tokenizer().decode(ids)}};
}

json chat_logprobs(const data::Tokenizer& tok, const std::vector<TokenLogprob>& lp) {
  auto entry = [&](int64_t id, float logprob) {
    const std::string s = tok.decode({id}, false, false);
    std::vector<int> bytes(s.begin(), s.end());
    for (int& b : bytes) b &= 0xff;
    return json{{"token", s}, {"logprob", logprob}, {"bytes", bytes}};
  };
  json content = json::array();
  for (auto& t : lp) {
    json e = entry(t.token, t.logprob);
    e["top_logprobs"] = json::array();
    for (auto& [id, l] : t.top) e["top_logprobs"].push_back(entry(id, l));
    content.push_back(e);
  }
  return json{{"content", content}};
}

json completion_logprobs(const data::Tokenizer& tok, const std::vector<TokenLogprob>& lp, size_t text_offset) {
  json out = {{"tokens", json::array()}, {"token_logprobs", json::array()}, {"top_logprobs", json::array()},
              {"text_offset", json::array()}};
  for (auto& t : lp) {
    const std::string s = tok.decode({t.token}, false, false);
    out["tokens"].push_back(s);
    out["token_logprobs"].push_back(t.logprob);
    json top = json::object();
    for (auto& [id, l] : t.top) top[tok.decode({id}, false, false)] = l;
    out["top_logprobs"].push_back(top);
    out["text_offset"].push_back(text_offset);
    text_offset += s.size();
  }
  return out;
}

}  // namespace forge::infer
