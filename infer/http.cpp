// HTTP/1.1 server on POSIX sockets (see http.h).
#include "infer/http.h"

#include <arpa/inet.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "core/error.h"

namespace forge::infer {
namespace {
using Clock = std::chrono::steady_clock;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}
std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

// Reads into buf until `done(buf)` or the deadline; false on timeout, close or error.
enum class ReadResult { ok, timeout, closed };
ReadResult read_until(int fd, std::string& buf, Clock::time_point deadline, const std::function<bool()>& done) {
  char tmp[16384];
  while (!done()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return ReadResult::timeout;
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, int(std::min<int64_t>(left, 1000)));
    if (r < 0 && errno != EINTR) return ReadResult::closed;
    if (r <= 0) continue;
    ssize_t n = ::recv(fd, tmp, sizeof(tmp), 0);
    if (n == 0) return ReadResult::closed;
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return ReadResult::closed;
    }
    buf.append(tmp, size_t(n));
  }
  return ReadResult::ok;
}
}  // namespace

const char* http_reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Status";
  }
}

std::string HttpRequest::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

bool HttpResponse::write_all(const std::string& data) {
  if (broken_) return false;
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      broken_ = true;
      return false;
    }
    off += size_t(n);
  }
  return true;
}

void HttpResponse::send(int st, const std::string& content_type, const std::string& body,
                        const std::map<std::string, std::string>& extra) {
  if (sent_) return;
  sent_ = true;
  status = st;
  std::string head = "HTTP/1.1 " + std::to_string(st) + " " + http_reason(st) + "\r\n";
  head += "Content-Type: " + content_type + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  for (auto& [k, v] : extra) head += k + ": " + v + "\r\n";
  head += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  write_all(head + body);
}

bool HttpResponse::begin_stream(int st, const std::string& content_type) {
  if (sent_) return false;
  sent_ = streaming_ = true;
  status = st;
  return write_all("HTTP/1.1 " + std::to_string(st) + " " + http_reason(st) + "\r\nContent-Type: " + content_type +
                   "\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n" +
                   (keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n"));
}

bool HttpResponse::write(const std::string& data) {
  if (data.empty()) return !broken_;
  char size[32];
  std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
  return write_all(size + data + "\r\n");
}

void HttpResponse::end_stream() {
  if (streaming_) write_all("0\r\n\r\n");
  streaming_ = false;
}

bool HttpResponse::client_gone() const {
  if (broken_) return true;
  pollfd p{fd_, POLLIN | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) return true;
  char c;
  return (p.revents & POLLIN) && ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

int parse_http_head(const std::string& head, size_t max_body_bytes, HttpRequest& req, size_t& body_length,
                    std::string& problem) {
  auto fail = [&](int status, std::string msg) {
    problem = std::move(msg);
    return status;
  };
  size_t line_end = head.find("\r\n");
  const std::string line = head.substr(0, line_end);
  size_t a = line.find(' '), b = line.rfind(' ');
  if (a == std::string::npos || b == a) return fail(400, "malformed request line");
  req.method = line.substr(0, a);
  std::string target = line.substr(a + 1, b - a - 1);
  req.version = line.substr(b + 1);
  if (req.version != "HTTP/1.1" && req.version != "HTTP/1.0")
    return fail(400, "unsupported protocol '" + req.version + "' (HTTP/1.0 or 1.1)");
  if (target.empty() || target[0] != '/') return fail(400, "malformed request target");
  size_t q = target.find('?');
  req.path = target.substr(0, q);
  if (q != std::string::npos) req.query = target.substr(q + 1);
  size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    size_t e = head.find("\r\n", pos);
    if (e == std::string::npos) e = head.size();
    const std::string h = head.substr(pos, e - pos);
    size_t colon = h.find(':');
    if (colon == std::string::npos || colon == 0) return fail(400, "malformed header line");
    req.headers[lower(trim(h.substr(0, colon)))] = trim(h.substr(colon + 1));
    pos = e + 2;
  }
  if (!req.header("transfer-encoding").empty())
    return fail(411, "chunked request bodies are not supported; send Content-Length");
  body_length = 0;
  const std::string cl = req.header("content-length");
  if (!cl.empty()) {
    if (cl.size() > 18 || cl.find_first_not_of("0123456789") != std::string::npos)
      return fail(400, "invalid Content-Length '" + cl + "'");
    body_length = std::stoull(cl);
    if (body_length > max_body_bytes)
      return fail(413, "request body of " + cl + " bytes exceeds the limit of " + std::to_string(max_body_bytes) +
                           " bytes");
  }
  return 0;
}

HttpServer::HttpServer(HttpOptions opt, HttpHandler handler, HttpErrorBody error_body)
    : opt_(std::move(opt)), handler_(std::move(handler)), error_body_(std::move(error_body)) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::start() {
  addrinfo hints{}, *res = nullptr;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  const std::string port = std::to_string(opt_.port);
  int rc = ::getaddrinfo(opt_.host.c_str(), port.c_str(), &hints, &res);
  FORGE_CHECK(rc == 0, "serve: cannot resolve --host ", opt_.host, ": ", gai_strerror(rc));
  int fd = ::socket(res->ai_family, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (fd < 0 || ::bind(fd, res->ai_addr, res->ai_addrlen) != 0 || ::listen(fd, 256) != 0) {
    std::string why = std::strerror(errno);
    ::freeaddrinfo(res);
    if (fd >= 0) ::close(fd);
    throw Error("serve: cannot listen on " + opt_.host + ":" + port + ": " + why);
  }
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                                           : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  ::freeaddrinfo(res);
  listen_fd_ = fd;
  // Request bodies and their JSON documents of a MiB and more get their own mappings, returned to
  // the system when freed: glibc would otherwise raise its mmap threshold after the first and keep
  // such buffers in the connection threads' arenas (stories15M, rounds of 2,000 chaos requests at
  // concurrency 64, some with 3 MB bodies: RSS 626, then 586-648 MiB after each round; with the
  // threshold fixed and the trim when idle, 489, 518, 527 MiB).
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  accept_thread_ = std::thread([this] { accept_loop(); });
}

void HttpServer::accept_loop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    // No connection open since some closed: hand the heap's free pages back to the system (each
    // connection thread allocates from its own malloc arena, and arenas keep what was freed).
    // At most once per poll period, so a sequential client does not pay it per request.
    if (active_.load() == 0 && trim_heap_.exchange(false)) malloc_trim(0);
    if (::poll(&p, 1, 200) <= 0) continue;
    int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) continue;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (active_.load() >= opt_.max_connections) {
      HttpResponse r(fd);
      r.keep_alive = false;
      r.send(503, "application/json", error_body_(503, "too many open connections; retry later"));
      ::close(fd);
      continue;
    }
    ++active_;
    std::thread([this, fd] {
      serve_connection(fd);
      // Lingering close: stop sending, then swallow what the client still sends (e.g. the rest of an
      // oversized body) for a moment, so it reads our error instead of a connection reset.
      ::shutdown(fd, SHUT_WR);
      std::string sink;
      const auto until = Clock::now() + std::chrono::milliseconds(500);
      read_until(fd, sink, until, [&] {
        if (sink.size() > (1u << 20)) sink.clear();
        return false;
      });
      ::close(fd);
      trim_heap_ = true;
      --active_;
    }).detach();
  }
}

void HttpServer::serve_connection(int fd) {
  std::string buf;
  for (bool first = true; !stopping_; first = false) {
    // Wait for the next request: idle keep-alive connections close quietly.
    const auto idle_deadline = Clock::now() + std::chrono::milliseconds(int64_t(
                                                  1000 * (first ? opt_.request_timeout_s : opt_.keepalive_timeout_s)));
    if (buf.empty() && read_until(fd, buf, idle_deadline, [&] { return !buf.empty() || stopping_; }) != ReadResult::ok)
      return;
    if (buf.empty()) return;  // shutting down
    const auto deadline = Clock::now() + std::chrono::milliseconds(int64_t(1000 * opt_.request_timeout_s));
    HttpResponse res(fd);
    auto fail = [&](int status, const std::string& msg) {
      res.keep_alive = false;
      res.send(status, "application/json", error_body_(status, msg));
    };
    size_t header_end = std::string::npos;
    ReadResult rr = read_until(fd, buf, deadline, [&] {
      header_end = buf.find("\r\n\r\n");
      return header_end != std::string::npos || buf.size() > opt_.max_header_bytes;
    });
    if (rr == ReadResult::closed) return;
    if (rr == ReadResult::timeout) return fail(408, "the request did not arrive in time");
    if (header_end == std::string::npos || header_end > opt_.max_header_bytes)
      return fail(431, "request headers exceed " + std::to_string(opt_.max_header_bytes) + " bytes");
    HttpRequest req;
    size_t length = 0;
    std::string problem;
    if (int status = parse_http_head(buf.substr(0, header_end), opt_.max_body_bytes, req, length, problem))
      return fail(status, problem);
    buf.erase(0, header_end + 4);
    const std::string conn = lower(req.header("connection"));
    res.keep_alive = req.version == "HTTP/1.1" ? conn != "close" : conn == "keep-alive";
    rr = read_until(fd, buf, deadline, [&] { return buf.size() >= length; });
    if (rr == ReadResult::closed) return;
    if (rr == ReadResult::timeout) return fail(408, "the request body did not arrive in time");
    req.body = buf.substr(0, length);
    buf.erase(0, length);
    try {
      handler_(req, res);
    } catch (const std::exception& e) {
      if (!res.sent()) fail(500, std::string("internal error: ") + e.what());
    }
    if (!res.sent()) fail(500, "no response");
    if (!res.keep_alive) return;
  }
}

void HttpServer::stop() {
  if (stopping_.exchange(true)) return;
  if (accept_thread_.joinable()) accept_thread_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
  // Connection threads notice stopping_ between requests; give running ones time to finish.
  for (int i = 0; i < 600 && active_.load() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

}  // namespace forge::infer
