// A progress bar on stderr for long work: done/total, rate, ETA and a caller's status text.
// On a terminal it redraws one line; otherwise (logs, CI) it prints a line every ~5% of the work.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace forge {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, bool enabled = true, std::string unit = "it");
  // done: units finished so far; status: extra text ("loss 2.31 lr 2e-4").
  void update(int64_t done, const std::string& status = "");
  void finish(const std::string& status = "");  // final line, always printed when enabled

 private:
  void draw(int64_t done, const std::string& status, bool final);
  std::string label_, unit_;
  int64_t total_, start_done_ = -1, last_printed_ = -1;
  bool enabled_, tty_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

std::string format_duration(double seconds);  // "1:02:03" or "2:03"

}  // namespace forge
