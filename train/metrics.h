// Run records: metrics.jsonl (one JSON object per logged step or eval) and the loss curve as SVG.
#pragma once
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace forge::train {

class MetricsLog {
 public:
  // keep_until_step >= 0: an existing file is cut to its lines with step <= that (a resumed run
  // continues the record); < 0 starts a new file.
  MetricsLog(const std::string& path, int64_t keep_until_step);
  void write(const nlohmann::json& line);  // flushed at once, so a crash loses nothing logged
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::ofstream out_;
};

using Curve = std::vector<std::pair<int64_t, double>>;  // (step, value)

// A quantity ("loss", GRPO's "reward") in training (line) and eval (dots) against the step, with
// axes and a legend.
void write_curve_svg(const std::string& path, const Curve& train, const Curve& eval, const std::string& title,
                     const std::string& quantity = "loss");
// Reads the (step, key) and (step, eval_<key>) series back from a metrics.jsonl.
void read_curves(const std::string& metrics_path, Curve& train, Curve& eval, const std::string& key = "loss");

}  // namespace forge::train
