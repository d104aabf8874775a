// A small HTTP/1.1 server for the OpenAI API on loopback or a LAN: one thread per connection
// (capped), keep-alive, Content-Length bodies with a size limit, a deadline per request against
// slow clients, chunked responses for server-sent events, and a way to notice a client that left.
#pragma once
#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace forge::infer {

struct HttpRequest {
  std::string method, path, query, version;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string header(const std::string& name) const;
};

// Handed to the handler; writes exactly one response.
class HttpResponse {
 public:
  explicit HttpResponse(int fd) : fd_(fd) {}
  void send(int status, const std::string& content_type, const std::string& body,
            const std::map<std::string, std::string>& extra = {});
  // Chunked response (server-sent events); write() returns false once the client is gone.
  bool begin_stream(int status, const std::string& content_type);
  bool write(const std::string& data);
  void end_stream();
  // True when the peer closed its side (checked without blocking).
  bool client_gone() const;
  bool sent() const { return sent_; }
  bool keep_alive = true;
  int status = 0;

 private:
  bool write_all(const std::string& data);
  int fd_;
  bool sent_ = false, streaming_ = false, broken_ = false;
};

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8000;                       // 0: any free port (see HttpServer::port)
  size_t max_body_bytes = 1 << 20;       // larger bodies get 413
  size_t max_header_bytes = 32 << 10;    // larger headers get 431
  double request_timeout_s = 30;         // whole request (headers + body) must arrive in this time
  double keepalive_timeout_s = 30;       // idle connections close after this
  int max_connections = 512;             // more get 503 and are closed
};

using HttpHandler = std::function<void(const HttpRequest&, HttpResponse&)>;
// Body of an error response at the HTTP level (bad framing, size, timeout), e.g. OpenAI's shape.
using HttpErrorBody = std::function<std::string(int status, const std::string& message)>;

class HttpServer {
 public:
  HttpServer(HttpOptions opt, HttpHandler handler, HttpErrorBody error_body);
  ~HttpServer();
  void start();  // binds and listens (throws with the address on failure), then accepts on a thread
  int port() const { return port_; }
  void stop();   // stops accepting, then waits for open connections to finish their request
  int active_connections() const { return active_.load(); }

 private:
  void accept_loop();
  void serve_connection(int fd);
  HttpOptions opt_;
  HttpHandler handler_;
  HttpErrorBody error_body_;
  int listen_fd_ = -1, port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> active_{0};
  std::atomic<bool> trim_heap_{false};  // a connection closed since the last malloc_trim
  std::thread accept_thread_;
};

const char* http_reason(int status);

// The request line and headers (the bytes before "\r\n\r\n"): fills req and the Content-Length,
// or returns the status of the client's error (400, 411, 413) with problem saying why.
int parse_http_head(const std::string& head, size_t max_body_bytes, HttpRequest& req, size_t& body_length,
                    std::string& problem);

}  // namespace forge::infer
