// forge serve's HTTP front: OpenAI-compatible routes over the engine, with streaming, API key,
// Prometheus metrics and graceful shutdown (running requests finish, new ones get 503).
#pragma once
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "infer/engine.h"
#include "infer/http.h"
#include "infer/metrics.h"
#include "infer/openai_api.h"
#include "infer/tool_parser.h"

namespace forge::infer {

struct ServerOptions {
  HttpOptions http;
  std::string served_name;               // the base model's id in /v1/models and requests
  std::vector<std::string> lora_names;   // adapter i+1's id
  std::string api_key;                   // empty: no auth
  ModelDefaults model;                   // tool-call and reasoning formats, sampling defaults
};

class Server {
 public:
  Server(Engine& engine, ServerOptions opt);
  void start();  // opens the port (the engine must be started)
  int port() const { return http_->port(); }
  // Refuses new requests with 503, waits up to timeout_s for running ones, then closes the port.
  void shutdown(double timeout_s);

 private:
  void handle(const HttpRequest& req, HttpResponse& res);
  void generate(int endpoint, const HttpRequest& req, HttpResponse& res, double arrival);
  std::string metrics_text() const;
  int64_t resolve_model(const std::string& name) const;

  Engine& engine_;
  ServerOptions opt_;
  std::unique_ptr<HttpServer> http_;
  std::atomic<bool> draining_{false};
  std::atomic<int> in_flight_{0};
  std::atomic<int64_t> ok_{0}, client_errors_{0}, server_errors_{0}, unavailable_{0};
  Histogram ttft_, itl_, e2e_;
};

}  // namespace forge::infer
