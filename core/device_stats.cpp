// Device transfer and host-fallback counts (see device_stats.h).
#include "core/device_stats.h"

#include <atomic>
#include <cstdio>
#include <mutex>
#include <set>

#include "core/ops/common.h"
#include "kernels/cuda/cuda_backend.h"

namespace forge {
namespace {
std::atomic<int64_t> g_host_fallbacks{0};

std::string bytes_str(int64_t b) {
  char s[32];
  if (b < 1024) std::snprintf(s, sizeof s, "%lld B", (long long)b);
  else if (b < (1 << 20)) std::snprintf(s, sizeof s, "%.1f KiB", double(b) / 1024);
  else std::snprintf(s, sizeof s, "%.1f MiB", double(b) / (1 << 20));
  return s;
}
}  // namespace

DeviceStats DeviceStats::operator-(const DeviceStats& o) const {
  return {h2d - o.h2d, d2h - o.d2h, d2d - o.d2d, h2d_bytes - o.h2d_bytes, d2h_bytes - o.d2h_bytes,
          host_fallbacks - o.host_fallbacks};
}

DeviceStats DeviceStats::operator+(const DeviceStats& o) const {
  return {h2d + o.h2d, d2h + o.d2h, d2d + o.d2d, h2d_bytes + o.h2d_bytes, d2h_bytes + o.d2h_bytes,
          host_fallbacks + o.host_fallbacks};
}

std::string DeviceStats::str() const {
  return std::to_string(h2d) + " h2d (" + bytes_str(h2d_bytes) + "), " + std::to_string(d2h) + " d2h (" +
         bytes_str(d2h_bytes) + "), " + std::to_string(d2d) + " d2d, " + std::to_string(host_fallbacks) +
         " host fallbacks";
}

DeviceStats device_stats() {
  const cuda::TransferStats t = cuda::transfer_stats();
  return {t.h2d, t.d2h, t.d2d, t.h2d_bytes, t.d2h_bytes, g_host_fallbacks};
}

namespace detail {
void note_host_fallback(const char* op) {
  ++g_host_fallbacks;
  static std::mutex mu;
  static std::set<std::string> seen;
  std::lock_guard<std::mutex> lock(mu);
  if (seen.insert(op).second)
    std::fprintf(stderr, "forge: op '%s' has no CUDA kernel yet; it runs on host copies\n", op);
}
}  // namespace detail

}  // namespace forge
