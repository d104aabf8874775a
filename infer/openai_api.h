// The OpenAI API's request and response shapes: /v1/completions and /v1/chat/completions bodies
// validated field by field into engine requests, and the JSON of responses, stream chunks and
// errors ({"error": {"message", "type", "param", "code"}}).
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "infer/engine.h"
#include "infer/tool_calls.h"
#include "models/pretrained.h"

namespace forge::infer {

struct ApiError : std::runtime_error {
  ApiError(int status, const std::string& message, const std::string& param = "",
           const std::string& type = "invalid_request_error", const std::string& code = "")
      : std::runtime_error(message), status(status), param(param), type(type), code(code) {}
  int status;
  std::string param, type, code;
};
std::string error_body(const std::string& message, const std::string& type, const std::string& param = "",
                       const std::string& code = "");

enum class Endpoint { completions, chat };

struct ApiRequest {
  Endpoint kind = Endpoint::completions;
  std::string model;
  int64_t adapter = 0;
  std::vector<std::vector<int64_t>> prompts;  // completions may carry several
  Request base;                               // everything but the prompt
  int64_t n = 1;
  bool stream = false, include_usage = false;
  bool echo = false;
  bool default_max_tokens = false;  // max_tokens not given: each prompt gets what its context leaves (capped)
  ToolChoice tools;                 // chat: the function calls the output is held to, if any
};

// What the server knows of its model beyond the engine: the format it calls tools in ("auto" tool
// choice), how it reasons (a chat request's base.reasoning is set where its prompt leaves the
// reply), and the sampling its creator recommends for the fields a request leaves out.
struct ModelDefaults {
  ToolFormat tool_format = ToolFormat::None;
  ReasoningFormat reasoning = ReasoningFormat::None;
  models::GenerationDefaults sampling;
};

// Parses and validates a body; throws ApiError naming the field (400) or the model (404).
// resolve_model maps the `model` field to an adapter index (-1: unknown).
ApiRequest parse_request(Endpoint kind, const std::string& body, const Engine& engine,
                         const std::function<int64_t(const std::string&)>& resolve_model,
                         const ModelDefaults& model = {});

// vLLM's /tokenize ({"prompt"} or a chat request's {"messages", ...}, rendered as the chat endpoint
// renders it) and /detokenize ({"tokens"}): the answers' JSON; ApiError on bad fields.
nlohmann::json tokenize(const std::string& body, const Engine& engine,
                        const std::function<int64_t(const std::string&)>& resolve_model, const ModelDefaults& model);
nlohmann::json detokenize(const std::string& body, const Engine& engine,
                          const std::function<int64_t(const std::string&)>& resolve_model);

// Token strings and logprobs in each endpoint's format.
nlohmann::json chat_logprobs(const data::Tokenizer& tok, const std::vector<TokenLogprob>& lp);
nlohmann::json completion_logprobs(const data::Tokenizer& tok, const std::vector<TokenLogprob>& lp,
                                   size_t text_offset);

// A schema of the request (response_format, tool parameters) compiled, or a 400 naming param whose
// message is "where: why".
std::shared_ptr<const JsonSchema> compile_schema(const nlohmann::json& schema, const std::string& where,
                                                 const std::string& param);

// "prefix-" and 16 random hex digits (response and tool-call ids).
std::string random_id(const char* prefix);

// JSON text that never throws on odd bytes (invalid UTF-8 becomes U+FFFD).
std::string dump(const nlohmann::json& j);

}  // namespace forge::infer
