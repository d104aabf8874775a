// The HTTP request head (request line and headers, the bytes before "\r\n\r\n"): parsed into the
// request, or refused with a 4xx; never more body than the limit.
#include <cstdio>

#include "infer/http.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace forge;
  const std::string head(fuzz::as_text(data, size));
  infer::HttpRequest req;
  size_t length = 0;
  std::string problem;
  const size_t limit = 1 << 20;
  const int status = infer::parse_http_head(head, limit, req, length, problem);
  const bool ok = status == 0 ? length <= limit && !req.path.empty() && req.path[0] == '/'
                              : status >= 400 && status < 500 && !problem.empty();
  if (!ok) {
    std::fprintf(stderr, "status %d, body length %zu, path '%s': %s\n", status, length, req.path.c_str(), problem.c_str());
    __builtin_trap();
  }
  return 0;
}
