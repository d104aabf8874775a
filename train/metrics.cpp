// metrics.jsonl and the SVG loss curve.
#include "train/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "core/error.h"
#include "core/file_util.h"

namespace forge::train {

MetricsLog::MetricsLog(const std::string& path, int64_t keep_until_step) : path_(path) {
  std::string kept;
  if (keep_until_step >= 0 && file_exists(path)) {
    std::istringstream in(read_text_file(path));
    for (std::string line; std::getline(in, line);) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_discarded() && j.value("step", int64_t(0)) <= keep_until_step) kept += line + "\n";
    }
  }
  out_.open(path, std::ios::trunc);
  FORGE_CHECK(out_, path, ": cannot write metrics");
  out_ << kept;
  out_.flush();
}

void MetricsLog::write(const nlohmann::json& line) {
  out_ << line.dump() << "\n";
  out_.flush();
}

void read_curves(const std::string& metrics_path, Curve& train, Curve& eval, const std::string& key) {
  std::istringstream in(read_text_file(metrics_path));
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("step")) continue;
    if (j.contains(key) && j[key].is_number()) train.emplace_back(j["step"].get<int64_t>(), j[key].get<double>());
    if (j.contains("eval_" + key) && j["eval_" + key].is_number())
      eval.emplace_back(j["step"].get<int64_t>(), j["eval_" + key].get<double>());
  }
}

namespace {
std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}
}  // namespace

void write_curve_svg(const std::string& path, const Curve& train, const Curve& eval, const std::string& title,
                     const std::string& quantity) {
  const double W = 720, H = 420, L = 70, R = 20, T = 40, B = 50;  // canvas and margins
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (const Curve* c : {&train, &eval})
    for (auto& [s, v] : *c)
      if (std::isfinite(v)) x0 = std::min(x0, double(s)), x1 = std::max(x1, double(s)), y0 = std::min(y0, v), y1 = std::max(y1, v);
  if (x0 > x1) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1;
  const double pad = 0.05 * (y1 - y0);
  y0 -= pad, y1 += pad;
  auto X = [&](double s) { return L + (s - x0) / (x1 - x0) * (W - L - R); };
  auto Y = [&](double v) { return T + (y1 - v) / (y1 - y0) * (H - T - B); };
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o << "<text x=\"" << W / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" << title << "</text>\n";
  for (int i = 0; i <= 5; ++i) {  // grid and tick labels
    const double v = y0 + (y1 - y0) * i / 5, s = x0 + (x1 - x0) * i / 5;
    o << "<line x1=\"" << L << "\" x2=\"" << W - R << "\" y1=\"" << Y(v) << "\" y2=\"" << Y(v) << "\" stroke=\"#ddd\"/>"
      << "<text x=\"" << L - 6 << "\" y=\"" << Y(v) + 4 << "\" text-anchor=\"end\">" << num(v) << "</text>\n";
    o << "<text x=\"" << X(s) << "\" y=\"" << H - B + 18 << "\" text-anchor=\"middle\">" << num(std::round(s)) << "</text>\n";
  }
  o << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << W - L - R << "\" height=\"" << H - T - B
    << "\" fill=\"none\" stroke=\"#333\"/>\n";
  o << "<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 12 << "\" text-anchor=\"middle\">step</text>\n";
  o << "<text x=\"16\" y=\"" << (T + H - B) / 2 << "\" transform=\"rotate(-90 16 " << (T + H - B) / 2
    << ")\" text-anchor=\"middle\">" << quantity << "</text>\n";
  if (!train.empty()) {
    o << "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"";
    for (auto& [s, v] : train)
      if (std::isfinite(v)) o << X(double(s)) << "," << Y(v) << " ";
    o << "\"/>\n";
  }
  for (auto& [s, v] : eval)
    if (std::isfinite(v)) o << "<circle cx=\"" << X(double(s)) << "\" cy=\"" << Y(v) << "\" r=\"4\" fill=\"#d62728\"/>\n";
  o << "<line x1=\"" << W - 170 << "\" x2=\"" << W - 150 << "\" y1=\"" << T + 16 << "\" y2=\"" << T + 16
    << "\" stroke=\"#1f77b4\" stroke-width=\"2\"/><text x=\"" << W - 144 << "\" y=\"" << T + 20 << "\">train " << quantity << "</text>\n";
  if (!eval.empty())
    o << "<circle cx=\"" << W - 160 << "\" cy=\"" << T + 34 << "\" r=\"4\" fill=\"#d62728\"/><text x=\"" << W - 144
      << "\" y=\"" << T + 38 << "\">eval " << quantity << "</text>\n";
  o << "</svg>\n";
  write_file_atomic(path, o.str());
}

}  // namespace forge::train
