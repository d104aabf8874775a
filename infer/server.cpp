// OpenAI-compatible routes over the engine (see server.h).
#include "infer/server.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <random>

#include "core/cpu_allocator.h"
#include "core/device_stats.h"
#include "core/process_memory.h"
#include "infer/openai_api.h"
#include "kernels/cuda/cuda_backend.h"

namespace forge::infer {
namespace {
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
double seconds() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }

const std::vector<double> kLatencyBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                             0.5,   1,      2.5,   5,    10,    30,   60};

// Events of one HTTP request's sequences, handed from the engine thread to the handler thread.
struct Channel {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::pair<size_t, Event>> events;  // (choice index, event)
};

struct Choice {
  std::string text;
  std::vector<TokenLogprob> logprobs;
  std::string finish;
  int64_t completion_tokens = 0, prompt_tokens = 0, cached = 0;
  double last_token_time = 0;
  bool started = false;
  size_t text_offset = 0;
  std::unique_ptr<ToolCallParser> calls;  // streamed "auto" tool choice: reads calls out of the text
  bool started_call = false;  // streamed named function: its id and name are sent
  std::optional<ReasoningSplitter> think;  // a reasoning model's reply: thinking apart from the answer
  std::string reasoning;
  int64_t reasoning_tokens = 0;  // tokens of the reasoning, its tags included
  int64_t undecided_tokens = 0;  // tokens at the start that may yet open reasoning

  // An event's text: a reasoning model's thinking goes apart (into thought and `reasoning`, its
  // tokens counted); the answer is returned.
  std::string split(const Event& ev, std::string& thought) {
    if (!think) return ev.text;
    using Phase = ReasoningSplitter::Phase;
    const Phase before = think->phase();
    std::string answer;
    think->push(ev.text, thought, answer);
    const int64_t n = int64_t(ev.tokens.size());
    if (before == Phase::Inside) {
      reasoning_tokens += n;  // the token that ends it too
    } else if (before == Phase::Start && think->phase() == Phase::Start) {
      undecided_tokens += n;  // whitespace, or part of a start tag
    } else if (before == Phase::Start) {
      if (think->opened()) reasoning_tokens += undecided_tokens + n;
      undecided_tokens = 0;
    }
    if (ev.finished) think->finish(thought, answer);
    reasoning += thought;
    return answer;
  }
};

// A chat message or delta's reasoning, under both names clients read: vLLM's `reasoning` and
// DeepSeek's `reasoning_content`.
void put_reasoning(json& j, const std::string& r) {
  j["reasoning"] = r.empty() ? json() : json(r);
  j["reasoning_content"] = j["reasoning"];
}
}  // namespace

Server::Server(Engine& engine, ServerOptions opt)
    : engine_(engine), opt_(std::move(opt)), ttft_(kLatencyBuckets), itl_(kLatencyBuckets), e2e_(kLatencyBuckets) {
  http_ = std::make_unique<HttpServer>(
      opt_.http, [this](const HttpRequest& q, HttpResponse& r) { handle(q, r); },
      [](int status, const std::string& msg) {
        return error_body(msg, status == 503 ? "service_unavailable" : "invalid_request_error");
      });
}

void Server::start() { http_->start(); }

void Server::shutdown(double timeout_s) {
  draining_ = true;
  const double until = seconds() + timeout_s;
  while (in_flight_.load() > 0 && seconds() < until) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  http_->stop();
}

int64_t Server::resolve_model(const std::string& name) const {
  if (name == opt_.served_name) return 0;
  for (size_t i = 0; i < opt_.lora_names.size(); ++i)
    if (opt_.lora_names[i] == name) return int64_t(i + 1);
  return -1;
}

std::string Server::metrics_text() const {
  const EngineCounters c = engine_.counters();
  std::string out;
  out += prom_metric("forge_requests_total", "counter", "Requests answered 2xx", double(ok_.load()));
  out += prom_metric("forge_request_errors_total", "counter", "Requests answered 4xx", double(client_errors_.load()));
  out += prom_metric("forge_request_server_errors_total", "counter", "Requests answered 5xx",
                     double(server_errors_.load() + unavailable_.load()));
  out += prom_metric("forge_requests_aborted_total", "counter", "Sequences cancelled (client gone, shutdown)",
                     double(c.aborted));
  out += prom_metric("forge_prompt_tokens_total", "counter", "Prompt tokens of admitted sequences", double(c.prompt_tokens));
  out += prom_metric("forge_prefill_tokens_total", "counter", "Prompt tokens computed (not from the prefix cache)",
                     double(c.prefill_tokens));
  out += prom_metric("forge_generation_tokens_total", "counter", "Generated tokens", double(c.generation_tokens));
  out += prom_metric("forge_num_requests_running", "gauge", "Sequences in the running batch", double(engine_.num_running()));
  out += prom_metric("forge_num_requests_waiting", "gauge", "Sequences waiting for admission", double(engine_.num_waiting()));
  out += prom_metric("forge_kv_cache_usage_ratio", "gauge", "Fraction of KV blocks in use or cached", engine_.kv_usage());
  // Host memory: the process's resident set (Prometheus' standard name) and what the CPU tensor
  // allocator keeps of freed blocks for reuse (bounded by FORGE_CPU_CACHE_MB).
  out += prom_metric("process_resident_memory_bytes", "gauge", "Resident memory of the server process", double(rss_bytes()));
  out += prom_metric("forge_cpu_cache_bytes", "gauge", "Freed CPU tensor memory kept for reuse",
                     double(cpu_alloc::stats().cached_bytes));
  out += prom_metric("forge_prefix_cache_hit_rate", "gauge", "Prompt tokens served from the prefix cache / prompt tokens",
                     c.prompt_tokens ? double(c.prefix_hit_tokens) / double(c.prompt_tokens) : 0.0);
  out += prom_metric("forge_num_preemptions_total", "counter", "Sequences preempted for recompute", double(c.preemptions));
  out += prom_metric("forge_engine_steps_total", "counter", "Engine steps (one packed model call each)", double(c.steps));
  out += prom_metric("forge_engine_step_seconds_total", "counter", "Time the engine spent in steps (busy time)",
                     c.step_seconds);
  if (const Device dev = engine_.device(); dev.is_cuda()) {  // the caching allocator and the copies
    size_t free_b = 0, total_b = 0;
    cuda::memory_info(dev.index, &free_b, &total_b);
    const DeviceStats d = device_stats();
    out += prom_metric("forge_device_memory_allocated_bytes", "gauge", "Device memory held by tensors",
                       double(cuda::bytes_in_use(dev.index)));
    out += prom_metric("forge_device_memory_peak_bytes", "gauge", "Most device memory held by tensors at once",
                       double(cuda::bytes_peak(dev.index)));
    out += prom_metric("forge_device_memory_reserved_bytes", "gauge",
                       "Device memory the caching allocator holds (in use and kept for reuse)",
                       double(cuda::bytes_reserved(dev.index)));
    out += prom_metric("forge_device_memory_total_bytes", "gauge", "The device's memory", double(total_b));
    out += prom_metric("forge_device_copies_to_device_total", "counter", "Host-to-device copies", double(d.h2d));
    out += prom_metric("forge_device_copies_to_host_total", "counter", "Device-to-host copies", double(d.d2h));
    out += prom_metric("forge_host_fallbacks_total", "counter", "Ops run on host copies for want of a CUDA kernel",
                       double(d.host_fallbacks));
  }
  out += ttft_.render("forge_time_to_first_token_seconds", "Time from request arrival to its first token");
  out += itl_.render("forge_inter_token_latency_seconds", "Time between consecutive tokens of a sequence");
  out += e2e_.render("forge_e2e_request_latency_seconds", "Time from arrival to the last token");
  return out;
}

void Server::handle(const HttpRequest& req, HttpResponse& res) {
  const double arrival = seconds();
  auto error = [&](const ApiError& e) {
    res.send(e.status, "application/json", error_body(e.what(), e.type, e.param, e.code));
  };
  try {
    const bool v1 = req.path.rfind("/v1/", 0) == 0;
    if (v1 && !opt_.api_key.empty() && req.header("authorization") != "Bearer " + opt_.api_key)
      throw ApiError(401, "missing or incorrect API key (send 'Authorization: Bearer KEY')", "", "invalid_request_error",
                     "invalid_api_key");
    auto only = [&](const char* method) {
      if (req.method != method) throw ApiError(405, req.path + " takes " + method + ", not " + req.method);
    };
    if (req.path == "/health") {
      only("GET");
      if (draining_) throw ApiError(503, "shutting down", "", "service_unavailable");
      res.send(200, "application/json", "{\"status\":\"ok\"}");
    } else if (req.path == "/metrics") {
      only("GET");
      res.send(200, "text/plain; version=0.0.4", metrics_text());
    } else if (req.path == "/v1/models") {
      only("GET");
      json data = json::array();
      auto card = [&](const std::string& id, const std::string& parent) {
        json m = {{"id", id}, {"object", "model"}, {"created", int64_t(std::time(nullptr))}, {"owned_by", "forge"},
                  {"max_model_len", engine_.max_model_len()}};
        m["parent"] = parent.empty() ? json() : json(parent);
        return m;
      };
      data.push_back(card(opt_.served_name, ""));
      for (auto& n : opt_.lora_names) data.push_back(card(n, opt_.served_name));
      res.send(200, "application/json", dump(json{{"object", "list"}, {"data", data}}));
    } else if (req.path == "/tokenize" || req.path == "/detokenize") {  // vLLM's
      only("POST");
      auto resolve = [this](const std::string& m) { return resolve_model(m); };
      const json out = req.path == "/tokenize" ? tokenize(req.body, engine_, resolve, opt_.model)
                                               : detokenize(req.body, engine_, resolve);
      res.send(200, "application/json", dump(out));
    } else if (req.path == "/v1/completions" || req.path == "/v1/chat/completions") {
      only("POST");
      if (draining_) throw ApiError(503, "the server is shutting down", "", "service_unavailable");
      generate(req.path == "/v1/chat/completions" ? int(Endpoint::chat) : int(Endpoint::completions), req, res, arrival);
    } else {
      throw ApiError(404, "no route " + req.method + " " + req.path, "", "invalid_request_error", "not_found");
    }
  } catch (const ApiError& e) {
    if (!res.sent()) error(e);
  } catch (const std::exception& e) {
    if (!res.sent()) error(ApiError(500, e.what(), "", "server_error"));
  }
  const int st = res.status;
  if (st >= 200 && st < 300) ++ok_;
  else if (st == 503) ++unavailable_;
  else if (st >= 500) ++server_errors_;
  else if (st >= 400) ++client_errors_;
}

void Server::generate(int endpoint, const HttpRequest& req, HttpResponse& res, double arrival) {
  const Endpoint kind = Endpoint(endpoint);
  const bool chat = kind == Endpoint::chat;
  if (req.header("content-type").rfind("application/json", 0) != 0)
    throw ApiError(415, "Content-Type must be application/json");
  ApiRequest ar = parse_request(kind, req.body, engine_, [this](const std::string& m) { return resolve_model(m); },
                                opt_.model);
  ++in_flight_;
  struct Guard {
    std::atomic<int>& n;
    ~Guard() { --n; }
  } guard{in_flight_};

  auto ch = std::make_shared<Channel>();
  std::vector<int64_t> ids;
  std::vector<Choice> choices;
  for (size_t p = 0; p < ar.prompts.size(); ++p)
    for (int64_t j = 0; j < ar.n; ++j) {
      Request q = ar.base;
      q.prompt = ar.prompts[p];
      if (ar.default_max_tokens) q.max_tokens = std::min<int64_t>(q.max_tokens, engine_.max_model_len() - int64_t(q.prompt.size()));
      if (q.seed && ar.n > 1) *q.seed += uint64_t(j);  // distinct, reproducible choices
      const size_t index = choices.size();
      choices.emplace_back();
      choices.back().think = q.reasoning;
      if (ar.echo) choices.back().text = engine_.tokenizer().decode(q.prompt, true);
      ids.push_back(engine_.add(std::move(q), [ch, index](const Event& ev) {
        std::lock_guard<std::mutex> g(ch->mu);
        ch->events.emplace_back(index, ev);
        ch->cv.notify_all();
      }));
    }
  const std::string id = random_id(chat ? "chatcmpl" : "cmpl");
  const int64_t created = int64_t(std::time(nullptr));
  auto abort_all = [&] {
    for (int64_t i : ids) engine_.abort(i);
  };
  auto chunk = [&](json choices_json) {
    return json{{"id", id}, {"object", chat ? "chat.completion.chunk" : "text_completion"}, {"created", created},
                {"model", ar.model}, {"choices", choices_json}};
  };
  const bool want_lp = ar.base.logprobs >= 0;
  if (ar.stream && !res.begin_stream(200, "text/event-stream")) return abort_all();
  auto send_event = [&](const json& j) { return res.write("data: " + dump(j) + "\n\n"); };
  if (ar.stream && chat)
    for (size_t i = 0; i < choices.size(); ++i)
      if (!send_event(chunk(json::array({{{"index", i}, {"delta", {{"role", "assistant"}, {"content", ""}}},
                                           {"logprobs", nullptr}, {"finish_reason", nullptr}}}))))
        return abort_all();

  // Tool calls: a named function's arguments stream as they come (the text is the arguments), as
  // OpenAI streams them; under "required" the text is held and sent as calls when it ends; under
  // "auto" content streams until a call opens and each call is sent once its text is complete.
  const bool named = ar.tools.mode == ToolChoice::Named;
  const bool held = named || ar.tools.mode == ToolChoice::Required;
  if (ar.stream && ar.tools.mode == ToolChoice::Auto)
    for (Choice& c : choices) c.calls = std::make_unique<ToolCallParser>(ar.tools.format, ar.tools.names, /*live=*/true);
  size_t done = 0;
  while (done < choices.size()) {
    std::deque<std::pair<size_t, Event>> batch;
    {
      std::unique_lock<std::mutex> lk(ch->mu);
      ch->cv.wait_for(lk, std::chrono::milliseconds(50), [&] { return !ch->events.empty(); });
      batch.swap(ch->events);
    }
    // One poll() per wake-up (about a microsecond): a client that hangs up is cancelled at
    // once, even when its whole generation would take only a few decode steps more.
    if (res.client_gone()) {
      res.keep_alive = false;
      abort_all();
      return res.send(400, "application/json", error_body("client disconnected", "invalid_request_error"));
    }
    for (auto& [index, ev] : batch) {
      Choice& c = choices[index];
      const double t = seconds();
      if (!ev.tokens.empty()) {
        if (!c.started) ttft_.observe(t - arrival);
        else itl_.observe(t - c.last_token_time);
        c.started = true;
        c.last_token_time = t;
      }
      if (ev.finished) {
        ++done;
        c.finish = ev.finish_reason;
        c.completion_tokens = ev.completion_tokens;
        c.prompt_tokens = ev.prompt_tokens;
        c.cached = ev.cached_tokens;
        e2e_.observe(t - arrival);
      }
      std::string thought;
      const std::string text = c.split(ev, thought);  // the rest of the chat path sees only the answer
      if (held) c.text += text;
      if (ar.stream) {
        json lp = nullptr;
        if (want_lp && !ev.logprobs.empty())
          lp = chat ? chat_logprobs(engine_.tokenizer(), ev.logprobs)
                    : completion_logprobs(engine_.tokenizer(), ev.logprobs, c.text_offset);
        c.text_offset += ev.text.size();
        json delta = text.empty() || held ? json::object() : json{{"content", text}};
        if (c.calls) {
          std::string content;
          std::vector<ParsedCall> calls;
          c.calls->push(text, content, calls);
          if (ev.finished) c.calls->finish(content, calls);
          delta = content.empty() ? json::object() : json{{"content", content}};
          for (const ParsedCall& piece : calls) delta["tool_calls"].push_back(tool_call_piece(piece));
          if (ev.finished && c.calls->calls() > 0 && c.finish == "stop") c.finish = "tool_calls";
        }
        // The call's id and name go first, with the answer's first text (or at once without reasoning).
        const bool call_due = !c.started_call && (!c.think || c.think->answering() || ev.finished);
        if (named && (!text.empty() || call_due)) {
          delta = {{"tool_calls", json::array({tool_call_piece({0, c.started_call ? "" : ar.tools.name, text})})}};
          c.started_call = true;
        }
        if (held && !named && ev.finished) {
          json msg = chat_message(ar.tools, c.text, c.finish);
          msg.erase("role");
          if (msg["content"].is_null()) {
            msg.erase("content");
            for (size_t k = 0; k < msg["tool_calls"].size(); ++k) msg["tool_calls"][k]["index"] = k;
          }
          delta = msg;
        }
        if (!thought.empty()) put_reasoning(delta, thought);
        json fin = ev.finished ? json(c.finish) : json();
        // One chunk per token step, even when the detokenizer holds text back (partial UTF-8, a
        // possible stop string), so clients can count tokens and time them.
        json ch_json = chat ? json{{"index", index}, {"delta", delta}, {"logprobs", lp}, {"finish_reason", fin}}
                            : json{{"index", index}, {"text", ev.text}, {"logprobs", lp}, {"finish_reason", fin}};
        if (!send_event(chunk(json::array({ch_json})))) return abort_all();
      } else {
        if (!held) c.text += text;
        c.logprobs.insert(c.logprobs.end(), ev.logprobs.begin(), ev.logprobs.end());
      }
    }
  }
  int64_t prompt_tokens = 0, completion_tokens = 0, cached = 0, reasoning_tokens = 0;
  for (size_t i = 0; i < choices.size(); ++i) {
    completion_tokens += choices[i].completion_tokens;
    reasoning_tokens += choices[i].reasoning_tokens;
    if (i % size_t(ar.n) == 0) {  // each prompt counts once, whatever n is
      prompt_tokens += choices[i].prompt_tokens;
      cached += choices[i].cached;
    }
  }
  json usage = {{"prompt_tokens", prompt_tokens}, {"completion_tokens", completion_tokens},
                {"total_tokens", prompt_tokens + completion_tokens},
                {"prompt_tokens_details", {{"cached_tokens", cached}}}};
  // As OpenAI counts a reasoning model's thinking (the split's own tags included).
  if (chat && opt_.model.reasoning != ReasoningFormat::None)
    usage["completion_tokens_details"] = {{"reasoning_tokens", reasoning_tokens}};
  if (ar.stream) {
    if (ar.include_usage) {
      json u = chunk(json::array());
      u["usage"] = usage;
      if (!send_event(u)) return;
    }
    res.write("data: [DONE]\n\n");
    return res.end_stream();
  }
  json out = json::array();
  for (size_t i = 0; i < choices.size(); ++i) {
    Choice& c = choices[i];
    json lp = nullptr;
    if (want_lp) lp = chat ? chat_logprobs(engine_.tokenizer(), c.logprobs) : completion_logprobs(engine_.tokenizer(), c.logprobs, 0);
    if (chat) {
      json msg = chat_message(ar.tools, c.text, c.finish);
      if (c.think) {
        put_reasoning(msg, c.reasoning);
        if (!c.reasoning.empty() && msg["content"] == "") msg["content"] = nullptr;  // thought, no answer (as vLLM)
      }
      out.push_back({{"index", i}, {"message", msg}, {"logprobs", lp}, {"finish_reason", c.finish}});
    }
    else
      out.push_back({{"index", i}, {"text", c.text}, {"logprobs", lp}, {"finish_reason", c.finish}});
  }
  json body = {{"id", id}, {"object", chat ? "chat.completion" : "text_completion"}, {"created", created},
               {"model", ar.model}, {"choices", out}, {"usage", usage}};
  res.send(200, "application/json", dump(body));
}

}  // namespace forge::infer
