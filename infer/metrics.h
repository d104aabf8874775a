// Prometheus text-format metrics for the server: counters, gauges and fixed-bucket histograms.
#pragma once
#include <mutex>
#include <string>
#include <vector>

namespace forge::infer {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}
  void observe(double x);
  // "# TYPE name histogram" and the _bucket/_sum/_count lines.
  std::string render(const std::string& name, const std::string& help) const;

 private:
  mutable std::mutex mu_;
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;
  double sum_ = 0;
  uint64_t count_ = 0;
};

std::string prom_metric(const std::string& name, const std::string& type, const std::string& help, double value);

}  // namespace forge::infer
