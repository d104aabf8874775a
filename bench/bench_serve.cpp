// `forge bench serve`: output tokens/s, time to first token and inter-token latency through the
// HTTP server on loopback (or straight into the engine), at concurrency 1, 8 and 32 (128-token
// prompts, 128 new tokens each, streamed), on a random model of a preset shape.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <omp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <latch>
#include <nlohmann/json.hpp>
#include <thread>

#include "bench/bench.h"
#include "core/error.h"
#include "core/random.h"
#include "data/make_tokenizer.h"
#include "infer/server.h"
#include "kernels/cuda/cuda_backend.h"
#include "models/presets.h"

namespace forge::bench {
namespace {
using Clock = std::chrono::steady_clock;
constexpr int64_t kPromptLen = 128, kNewTokens = 128;  // per request, at every level
double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Timing {
  double ttft = 0;
  std::vector<double> itl;
  int64_t tokens = 0;
};

// Streamed completions over fresh loopback connections, read by one thread with poll(), as an
// asyncio client (vLLM's benchmark_serving) does: a thread per stream would wake 32 threads a
// decode step on the same 2 cores as the server. Times each SSE chunk (one per token).
std::vector<Timing> stream_requests(int port, const std::vector<std::string>& bodies) {
  struct Conn {
    int fd = -1;
    std::string buf;
    size_t scanned = 0;
    double last = 0;
    bool open = true;
  };
  const size_t n_conn = bodies.size();
  std::vector<Conn> cs(n_conn);
  std::vector<Timing> ts(n_conn);
  const auto t0 = Clock::now();
  for (size_t i = 0; i < n_conn; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    FORGE_CHECK(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0,
                "bench serve: cannot connect");
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    const std::string& body = bodies[i];
    const std::string req =
        "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Connection: close\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body;
    FORGE_CHECK(::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == ssize_t(req.size()),
                "bench serve: send failed");
    cs[i].fd = fd;
  }
  size_t open = n_conn;
  std::vector<pollfd> pf;
  std::vector<size_t> pf_conn;  // cs index of each pf entry
  char tmp[8192];
  while (open > 0) {
    pf.clear();
    pf_conn.clear();
    for (size_t i = 0; i < n_conn; ++i)
      if (cs[i].open) {
        pf.push_back({cs[i].fd, POLLIN, 0});
        pf_conn.push_back(i);
      }
    FORGE_CHECK(::poll(pf.data(), pf.size(), 60000) > 0,
                "bench serve: no answer from the server in 60 s");
    for (size_t k = 0; k < pf.size(); ++k) {
      if (!(pf[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const size_t i = pf_conn[k];
      Conn& c = cs[i];
      Timing& t = ts[i];
      ssize_t n = ::recv(c.fd, tmp, sizeof(tmp), 0);
      if (n <= 0) {
        c.open = false;
        --open;
        ::close(c.fd);
        FORGE_CHECK(c.buf.rfind("HTTP/1.1 200", 0) == 0,
                    "bench serve: request failed: ", c.buf.substr(0, 300));
        continue;
      }
      c.buf.append(tmp, size_t(n));
      size_t q;
      while ((q = c.buf.find("data: {", c.scanned)) != std::string::npos) {
        const size_t end = c.buf.find("\n\n", q);
        if (end == std::string::npos) break;
        c.scanned = end;
        const double now = since(t0);
        if (t.tokens == 0)
          t.ttft = now;
        else
          t.itl.push_back(now - c.last);
        c.last = now;
        ++t.tokens;
      }
    }
  }
  return ts;
}

double pct(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(q * double(v.size())))];
}

// The same streams straight into the engine, no HTTP: the callback stamps each token on the
// engine thread. Shows what the HTTP front costs.
std::vector<Timing> engine_requests(infer::Engine& engine,
                                    const std::vector<infer::Request>& reqs) {
  std::vector<Timing> ts(reqs.size());
  std::vector<double> last(reqs.size(), 0);
  std::latch finished(std::ptrdiff_t(reqs.size()));
  const auto t0 = Clock::now();
  for (size_t i = 0; i < reqs.size(); ++i)
    engine.add(reqs[i], [&, i](const infer::Event& ev) {
      const double now = since(t0);
      Timing& t = ts[i];
      for (size_t k = 0; k < ev.tokens.size(); ++k) {
        if (t.tokens == 0)
          t.ttft = now;
        else
          t.itl.push_back(now - last[i]);
        last[i] = now;
        ++t.tokens;
      }
      if (ev.finished) finished.count_down();
    });
  finished.wait();
  return ts;
}

struct Level {
  double tok_s = 0, steps = 0, step_ms = 0;
  std::vector<double> ttft, itl;
};

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// The clients' side of bench serve: levels 1, 8, 32 in `rounds` rounds through HTTP on `port` (or
// straight into the engine), then one line (or JSON object) per level and the ratio.
void measure_levels(infer::Engine& engine, int port, const models::ModelConfig& c,
                    const std::string& preset, const std::string& dtype_name, bool json, int rounds,
                    bool http) {
  const int threads = omp_get_max_threads();
  const std::string where = engine.device().str();
  Generator g(7);
  auto prompt = [&](int64_t i) {
    std::vector<int64_t> ids =
        randint(1, c.vocab_size, {kPromptLen}, DType::I64, &g).to_vector<int64_t>();
    ids[0] = i % (c.vocab_size - 1) + 1;  // distinct prompts
    return ids;
  };
  // One level: conc streams started together; output tokens over the wall time of the level.
  auto run_level = [&](int conc, int64_t first_id) {
    const infer::EngineCounters c0 = engine.counters();
    std::vector<Timing> res;
    double wall = 0;
    if (http) {
      std::vector<std::string> bodies;
      for (int i = 0; i < conc; ++i)
        bodies.push_back(nlohmann::json{
            {"model", preset},
            {"prompt", prompt(first_id + i)},
            {"max_tokens", kNewTokens},
            {"temperature", 0},
            {"ignore_eos", true},
            {"stream", true}}.dump());
      const auto t0 = Clock::now();
      res = stream_requests(port, bodies);
      wall = since(t0);
    } else {
      std::vector<infer::Request> reqs(static_cast<size_t>(conc));
      for (int i = 0; i < conc; ++i) {
        reqs[size_t(i)].prompt = prompt(first_id + i);
        reqs[size_t(i)].max_tokens = kNewTokens;
        reqs[size_t(i)].ignore_eos = true;
        reqs[size_t(i)].sampling.temperature = 0;
      }
      const auto t0 = Clock::now();
      res = engine_requests(engine, reqs);
      wall = since(t0);
    }
    Level L;
    int64_t tokens = 0;
    for (auto& r : res) {
      L.ttft.push_back(r.ttft);
      L.itl.insert(L.itl.end(), r.itl.begin(), r.itl.end());
      tokens += r.tokens;
    }
    FORGE_CHECK(tokens == conc * kNewTokens, "bench serve: ", tokens,
                " tokens came back, expected ", conc * kNewTokens);
    L.tok_s = double(tokens) / wall;
    const infer::EngineCounters c1 = engine.counters();
    L.steps = double(c1.steps - c0.steps);
    L.step_ms = 1e3 * (c1.step_seconds - c0.step_seconds) / std::max(1.0, L.steps);
    return L;
  };
  run_level(1, 0);  // warm-up
  // Rounds of 1, 8, 32 in turn, so that drifts of a shared VM's speed hit every level alike;
  // each level reports the median round's throughput and the latencies of all its rounds.
  const std::vector<int> levels = {1, 8, 32};
  std::vector<std::vector<Level>> got(levels.size());
  for (int r = 0; r < rounds; ++r)
    for (size_t li = 0; li < levels.size(); ++li)
      got[li].push_back(run_level(levels[li], 100000 * r + 1000 * levels[li]));
  const char* via = http ? "http" : "engine";
  if (!json)
    std::printf("%-12s %5s %12s %10s %10s %10s %10s %7s %9s   (%s, median of %d rounds)\n",
                "preset", "conc", "out tok/s", "TTFT p50", "TTFT p99", "ITL p50", "ITL p99",
                "steps", "step ms", via, rounds);
  std::vector<double> median_tok_s;
  for (size_t li = 0; li < levels.size(); ++li) {
    std::vector<double> tps, ttft, itl;
    for (const Level& L : got[li]) {
      tps.push_back(L.tok_s);
      ttft.insert(ttft.end(), L.ttft.begin(), L.ttft.end());
      itl.insert(itl.end(), L.itl.begin(), L.itl.end());
    }
    median_tok_s.push_back(median(tps));
    // The engine steps and time per step (model + sampling, without waits) of the round nearest
    // the median.
    const Level& mid =
        *std::min_element(got[li].begin(), got[li].end(), [&](const Level& a, const Level& b) {
          return std::abs(a.tok_s - median_tok_s.back()) < std::abs(b.tok_s - median_tok_s.back());
        });
    const std::string shape =
        preset + " P128 N128 conc" + std::to_string(levels[li]) + (http ? "" : " engine");
    if (json) {
      report(
          {"serve.output_tok_s", shape, dtype_name, where, "tok/s", threads, median_tok_s.back()},
          true);
      report({"serve.ttft_p50", shape, dtype_name, where, "ms", threads, 1e3 * pct(ttft, 0.5)},
             true);
      report({"serve.ttft_p99", shape, dtype_name, where, "ms", threads, 1e3 * pct(ttft, 0.99)},
             true);
      report({"serve.itl_p50", shape, dtype_name, where, "ms", threads, 1e3 * pct(itl, 0.5)}, true);
      report({"serve.itl_p99", shape, dtype_name, where, "ms", threads, 1e3 * pct(itl, 0.99)},
             true);
      report({"serve.step_ms", shape, dtype_name, where, "ms", threads, mid.step_ms}, true);
    } else {
      std::printf("%-12s %5d %12.1f %8.1fms %8.1fms %8.1fms %8.1fms %7.0f %7.2fms\n",
                  preset.c_str(), levels[li], median_tok_s.back(), 1e3 * pct(ttft, 0.5),
                  1e3 * pct(ttft, 0.99), 1e3 * pct(itl, 0.5), 1e3 * pct(itl, 0.99), mid.steps,
                  mid.step_ms);
    }
  }
  // The ratio of each round (its own conc 1 and conc 32, minutes apart at most) and of the
  // medians.
  std::string per_round;
  for (int r = 0; r < rounds; ++r) {
    char b[32];
    std::snprintf(b, sizeof(b), "%s%.2f", r ? ", " : "",
                  got[2][size_t(r)].tok_s / got[0][size_t(r)].tok_s);
    per_round += b;
  }
  const double ratio = median_tok_s[2] / median_tok_s[0];
  if (engine.device().is_cuda())  // weights, the KV cache and the steps' activations at their peak
    report({"serve.peak_device_memory", preset + " P128 N128", dtype_name, where, "MiB", threads,
            double(cuda::bytes_peak(engine.device().index)) / (1 << 20)}, json);
  if (json)
    report({"serve.conc32_over_conc1", preset + " P128 N128" + (http ? "" : " engine"), dtype_name,
            where, "x", threads, ratio},
           true);
  else
    std::printf("conc 32 / conc 1: %.2fx (rounds: %s)\n", ratio, per_round.c_str());
  std::fflush(stdout);
}
}  // namespace

int bench_serve(const std::string& preset, const std::string& dtype_name,
                const std::string& kv_dtype, bool json, int rounds, bool http, Device dev) {
  models::ModelConfig c = models::preset_config("llama", preset);
  c.max_position_embeddings = std::max<int64_t>(c.max_position_embeddings, 512);
  const DType dt = dtype_from_name(dtype_name);
  auto model = std::make_shared<models::CausalLM>(c, dt);
  model->init_weights(0.02, 1234);
  model->to(dev);
  const std::string dir =
      (std::filesystem::temp_directory_path() / "forge_bench_serve_tok").string();
  std::filesystem::create_directories(dir);
  data::save_tokenizer_files(data::make_byte_level_tokenizer(c.vocab_size), dir);
  auto tok = data::Tokenizer::from_dir(dir);
  infer::EngineConfig ec;
  ec.max_model_len = kPromptLen + kNewTokens;
  ec.kv_cache_dtype = dtype_from_name(kv_dtype);
  ec.kv_cache_bytes = 40 * (kPromptLen + kNewTokens + 16) *
                      infer::kv_bytes_per_token(c, ec.kv_cache_dtype);  // 32 sequences, slack
  ec.max_num_seqs = 64;
  ec.prefix_caching = false;  // distinct prompts anyway; measure the plain path
  infer::Engine engine(model, tok, {}, ec);
  infer::ServerOptions so;
  so.http.port = 0;
  so.served_name = preset;
  infer::Server server(engine, so);
  server.start();
  // The clients run on a thread of their own; the engine on this one, which made the model (see
  // Engine::run), as in `forge serve`.
  std::exception_ptr failed;
  std::thread clients([&] {
    try {
      measure_levels(engine, server.port(), c, preset, dtype_name, json, rounds, http);
    } catch (...) {
      failed = std::current_exception();
    }
    server.shutdown(5);
    engine.stop();
  });
  engine.run();
  clients.join();
  if (failed) std::rethrow_exception(failed);
  return 0;
}

}  // namespace forge::bench
