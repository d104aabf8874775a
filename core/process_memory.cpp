#include "core/process_memory.h"

#include <sys/resource.h>

#include <fstream>
#include <string>

namespace forge {
namespace {
// A "VmXXX:  1234 kB" line of /proc/self/status in bytes; 0 when absent.
size_t status_kb(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::string k = std::string(key) + ":";
  while (std::getline(f, line))
    if (line.rfind(k, 0) == 0) return size_t(std::stoull(line.substr(k.size()))) * 1024;
  return 0;
}
}  // namespace

size_t rss_bytes() { return status_kb("VmRSS"); }

size_t peak_rss_bytes() {
  if (size_t hwm = status_kb("VmHWM")) return hwm;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return size_t(ru.ru_maxrss) * 1024;
}

bool reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";  // 5: reset the peak RSS to the current RSS
  f.flush();
  return bool(f);
}

}  // namespace forge
