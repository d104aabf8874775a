// `forge bench serve`: output tokens/s, time to first token and inter-token latency through the
// HTTP server on loopback, at concurrency 1, 8 and 32 (128-token prompts, 128 new tokens each,
// streamed), on a random model of a preset shape.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <omp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "bench/bench.h"
#include "core/error.h"
#include "core/random.h"
#include "data/make_tokenizer.h"
#include "infer/server.h"
#include "models/presets.h"

namespace forge::bench {
namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Timing {
  double ttft = 0;
  std::vector<double> itl;
  int64_t tokens = 0;
};

// One streamed completion over a fresh loopback connection; times each SSE chunk (one per token).
Timing stream_request(int port, const std::string& body) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  FORGE_CHECK(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0, "bench serve: cannot connect");
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  const std::string req = "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          "Connection: close\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  const auto t0 = Clock::now();
  FORGE_CHECK(::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == ssize_t(req.size()), "bench serve: send failed");
  Timing t;
  std::string buf;
  size_t scanned = 0;
  double last = 0;
  char tmp[8192];
  for (;;) {
    ssize_t n = ::recv(fd, tmp, sizeof(tmp), 0);
    if (n <= 0) break;
    buf.append(tmp, size_t(n));
    size_t p;
    while ((p = buf.find("data: {", scanned)) != std::string::npos) {
      const size_t end = buf.find("\n\n", p);
      if (end == std::string::npos) break;
      scanned = end;
      const double now = since(t0);
      if (t.tokens == 0) t.ttft = now;
      else t.itl.push_back(now - last);
      last = now;
      ++t.tokens;
    }
  }
  ::close(fd);
  FORGE_CHECK(buf.rfind("HTTP/1.1 200", 0) == 0, "bench serve: request failed: ", buf.substr(0, 300));
  return t;
}

double pct(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(q * double(v.size())))];
}
}  // namespace

int bench_serve(const std::string& preset, const std::string& dtype_name, const std::string& kv_dtype, bool json) {
  models::ModelConfig c = models::preset_config("llama", preset);
  c.max_position_embeddings = std::max<int64_t>(c.max_position_embeddings, 512);
  const DType dt = dtype_from_name(dtype_name);
  auto model = std::make_shared<models::CausalLM>(c, dt);
  model->init_weights(0.02, 1234);
  const std::string dir = (std::filesystem::temp_directory_path() / "forge_bench_serve_tok").string();
  std::filesystem::create_directories(dir);
  data::save_tokenizer_files(data::make_byte_level_tokenizer(c.vocab_size), dir);
  auto tok = data::Tokenizer::from_dir(dir);
  const int64_t P = 128, N = 128;
  infer::EngineConfig ec;
  ec.max_model_len = P + N;
  ec.kv_cache_dtype = dtype_from_name(kv_dtype);
  ec.kv_cache_bytes = 40 * (P + N + 16) * infer::kv_bytes_per_token(c, ec.kv_cache_dtype);  // 32 sequences, slack
  ec.max_num_seqs = 64;
  ec.prefix_caching = false;  // distinct prompts anyway; measure the plain path
  infer::Engine engine(model, tok, {}, ec);
  engine.start();
  infer::ServerOptions so;
  so.http.port = 0;
  so.served_name = preset;
  infer::Server server(engine, so);
  server.start();
  const int threads = omp_get_max_threads();
  Generator g(7);
  auto body = [&](int64_t i) {
    std::vector<int64_t> ids = randint(1, c.vocab_size, {P}, DType::I64, &g).to_vector<int64_t>();
    ids[0] = i % (c.vocab_size - 1) + 1;  // distinct prompts
    return nlohmann::json{{"model", preset}, {"prompt", ids}, {"max_tokens", N}, {"temperature", 0},
                          {"ignore_eos", true}, {"stream", true}}.dump();
  };
  stream_request(server.port(), body(0));  // warm-up
  if (!json) std::printf("%-12s %5s %12s %10s %10s %10s %10s\n", "preset", "conc", "out tok/s", "TTFT p50", "TTFT p99", "ITL p50", "ITL p99");
  for (int conc : {1, 8, 32}) {
    std::vector<std::string> bodies;
    for (int i = 0; i < conc; ++i) bodies.push_back(body(1000 * conc + i));
    std::vector<Timing> res(static_cast<size_t>(conc));
    const auto t0 = Clock::now();
    std::vector<std::thread> ts;
    for (int i = 0; i < conc; ++i)
      ts.emplace_back([&, i] { res[size_t(i)] = stream_request(server.port(), bodies[size_t(i)]); });
    for (auto& t : ts) t.join();
    const double wall = since(t0);
    std::vector<double> ttft, itl;
    int64_t tokens = 0;
    for (auto& r : res) {
      ttft.push_back(r.ttft);
      itl.insert(itl.end(), r.itl.begin(), r.itl.end());
      tokens += r.tokens;
    }
    const std::string shape = preset + " P128 N128 conc" + std::to_string(conc);
    if (json) {
      report({"serve.output_tok_s", shape, dtype_name, "cpu", "tok/s", threads, double(tokens) / wall}, true);
      report({"serve.ttft_p50", shape, dtype_name, "cpu", "ms", threads, 1e3 * pct(ttft, 0.5)}, true);
      report({"serve.ttft_p99", shape, dtype_name, "cpu", "ms", threads, 1e3 * pct(ttft, 0.99)}, true);
      report({"serve.itl_p50", shape, dtype_name, "cpu", "ms", threads, 1e3 * pct(itl, 0.5)}, true);
      report({"serve.itl_p99", shape, dtype_name, "cpu", "ms", threads, 1e3 * pct(itl, 0.99)}, true);
    } else {
      std::printf("%-12s %5d %12.1f %8.1fms %8.1fms %8.1fms %8.1fms\n", preset.c_str(), conc, double(tokens) / wall,
                  1e3 * pct(ttft, 0.5), 1e3 * pct(ttft, 0.99), 1e3 * pct(itl, 0.5), 1e3 * pct(itl, 0.99));
      std::fflush(stdout);
    }
  }
  server.shutdown(5);
  engine.stop();
  return 0;
}

}  // namespace forge::bench
