// Progress bar drawing (see progress.h).
#include "core/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace forge {

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  long t = long(s + 0.5), h = t / 3600, m = (t / 60) % 60, sec = t % 60;
  char buf[32];
  if (h) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", h, m, sec);
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", m, sec);
  return buf;
}

ProgressBar::ProgressBar(std::string label, int64_t total, bool enabled, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), enabled_(enabled),
      tty_(isatty(STDERR_FILENO)), start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

void ProgressBar::update(int64_t done, const std::string& status) {
  if (!enabled_) return;
  if (start_done_ < 0) {  // rate counts from the first update (a resumed run starts mid-way)
    start_done_ = done;
    start_ = std::chrono::steady_clock::now();
  }
  auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (std::chrono::duration<double>(now - last_draw_).count() < 0.1 && done < total_) return;
  } else {  // logs: every ~5% and at most once a second; the last line comes from finish()
    const int64_t every = std::max<int64_t>(1, total_ / 20);
    const double since = std::chrono::duration<double>(now - last_draw_).count();
    if (done >= total_ || (last_printed_ >= 0 && (done - last_printed_ < every || since < 1.0))) return;
  }
  last_draw_ = now;
  last_printed_ = done;
  draw(done, status, false);
}

void ProgressBar::finish(const std::string& status) {
  if (!enabled_) return;
  draw(total_, status, true);
}

void ProgressBar::draw(int64_t done, const std::string& status, bool final) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 && start_done_ >= 0 ? double(done - start_done_) / elapsed : 0.0;
  const double eta = rate > 0 ? double(total_ - done) / rate : NAN;
  const int width = 24;
  const int filled = total_ > 0 ? int(double(width) * double(done) / double(total_)) : width;
  std::string bar(size_t(std::min(filled, width)), '#');
  bar.resize(size_t(width), '.');
  std::fprintf(stderr, "%s%s %lld/%lld [%s] %.2f %s/s %s %s%s", tty_ ? "\r\033[2K" : "", label_.c_str(),
               (long long)done, (long long)total_, bar.c_str(), rate, unit_.c_str(),
               final ? ("in " + format_duration(elapsed)).c_str() : ("ETA " + format_duration(eta)).c_str(),
               status.c_str(), (final || !tty_) ? "\n" : "");
  std::fflush(stderr);
}

}  // namespace forge
