// Rotary embedding frequencies (see rope.h); each formula follows transformers'
// _compute_<type>_parameters.
#include "models/rope.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace forge::models {
using json = nlohmann::json;

namespace {
double num(const json& j, const char* key, double fallback, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  FORGE_CHECK(j[key].is_number(), where, ".", key, " must be a number, got ", j[key].dump());
  return j[key].get<double>();
}

std::vector<double> factors(const json& j, const char* key, const std::string& where) {
  FORGE_CHECK(j.contains(key) && j[key].is_array() && !j[key].empty(), where, ".", key,
              " must be a list of numbers (longrope)");
  std::vector<double> v;
  for (const auto& x : j[key]) {
    FORGE_CHECK(x.is_number() && x.get<double>() > 0, where, ".", key, " must hold positive numbers, got ", x.dump());
    v.push_back(x.get<double>());
  }
  return v;
}

// yarn: frequencies the original context already turned fully keep their value (extrapolation),
// slow ones are divided by factor (interpolation), with a linear ramp between.
std::vector<double> yarn(const std::vector<double>& base_freq, double theta, int64_t dim, double factor,
                         const RopeScaling& s, int64_t original) {
  auto correction_dim = [&](double rotations) {
    return double(dim) * std::log(double(original) / (rotations * 2 * M_PI)) / (2 * std::log(theta));
  };
  double low = correction_dim(s.beta_fast), high = correction_dim(s.beta_slow);
  if (s.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, double(dim - 1));
  if (low == high) high += 0.001;  // as transformers: no singular ramp
  std::vector<double> f(base_freq.size());
  for (size_t i = 0; i < f.size(); ++i) {
    const float ramp = std::clamp(float((double(i) - low) / (high - low)), 0.0f, 1.0f);  // f32 in HF
    const double extrapolation = 1.0 - double(ramp);
    f[i] = base_freq[i] / factor * (1 - extrapolation) + base_freq[i] * extrapolation;
  }
  return f;
}

double yarn_mscale(double scale, double m) { return scale <= 1 ? 1.0 : 0.1 * m * std::log(scale) + 1.0; }
}  // namespace

void read_rope(const json& j, const std::string& where, double& theta, RopeScaling& s) {
  FORGE_CHECK(j.is_object(), where, " must be an object or null");
  theta = num(j, "rope_theta", theta, where);
  const std::string type = j.value("rope_type", j.value("type", std::string("default")));
  s = RopeScaling{};
  s.type = type;
  if (type == "linear") {
    s.factor = num(j, "factor", 1.0, where);
  } else if (type == "llama3") {
    s.factor = num(j, "factor", 8.0, where);
    s.low_freq_factor = num(j, "low_freq_factor", 1.0, where);
    s.high_freq_factor = num(j, "high_freq_factor", 4.0, where);
    s.original_max_position_embeddings = int64_t(num(j, "original_max_position_embeddings", 8192, where));
    FORGE_CHECK(s.high_freq_factor > s.low_freq_factor, where, ".high_freq_factor must exceed low_freq_factor");
  } else if (type == "yarn" || type == "longrope" || type == "su") {
    s.type = type == "su" ? "longrope" : type;  // "su": Phi-3's first name for longrope
    s.factor = num(j, "factor", 0.0, where);
    s.original_max_position_embeddings = int64_t(num(j, "original_max_position_embeddings", 0, where));
    s.attention_factor = num(j, "attention_factor", 0.0, where);
    if (s.type == "yarn") {
      FORGE_CHECK(s.factor > 0, where, ".factor must be positive (yarn)");
      s.beta_fast = num(j, "beta_fast", 32, where);
      s.beta_slow = num(j, "beta_slow", 1, where);
      s.mscale = num(j, "mscale", 0, where);
      s.mscale_all_dim = num(j, "mscale_all_dim", 0, where);
      if (j.contains("truncate") && j["truncate"].is_boolean()) s.truncate = j["truncate"].get<bool>();
    } else {
      s.short_factor = factors(j, "short_factor", where);
      s.long_factor = factors(j, "long_factor", where);
      FORGE_CHECK(s.short_factor.size() == s.long_factor.size(), where,
                  ".short_factor and long_factor must have the same length");
    }
    FORGE_CHECK(s.factor >= 0 && s.attention_factor >= 0, where, ".factor and attention_factor must be positive");
    return;
  } else if (type == "dynamic") {
    throw Error(where + " type 'dynamic' is not supported: its frequencies change with the sequence length, so a "
                        "cached prompt and its continuation would disagree (linear, llama3, yarn, longrope are)");
  } else if (type != "default") {
    throw Error(where + " type '" + type + "' is not supported (linear, llama3, yarn, longrope are)");
  }
  FORGE_CHECK(s.factor > 0, where, ".factor must be positive");
}

json rope_to_json(const RopeScaling& s) {
  if (s.type == "default") return nullptr;
  json j = {{"rope_type", s.type}};
  if (s.factor > 0) j["factor"] = s.factor;
  if (s.type == "llama3") {
    j["low_freq_factor"] = s.low_freq_factor;
    j["high_freq_factor"] = s.high_freq_factor;
  }
  if (s.type != "linear" && s.original_max_position_embeddings > 0)
    j["original_max_position_embeddings"] = s.original_max_position_embeddings;
  if (s.attention_factor > 0) j["attention_factor"] = s.attention_factor;
  if (s.type == "yarn") {
    j["beta_fast"] = s.beta_fast;
    j["beta_slow"] = s.beta_slow;
    if (!s.truncate) j["truncate"] = false;
    if (s.mscale > 0) j["mscale"] = s.mscale;
    if (s.mscale_all_dim > 0) j["mscale_all_dim"] = s.mscale_all_dim;
  }
  if (s.type == "longrope") {
    j["short_factor"] = s.short_factor;
    j["long_factor"] = s.long_factor;
  }
  return j;
}

namespace {
int64_t original_len(const RopeScaling& s, int64_t max_pos) {
  return s.original_max_position_embeddings > 0 ? s.original_max_position_embeddings : max_pos;
}
double scale_factor(const RopeScaling& s, int64_t max_pos) {
  return s.factor > 0 ? s.factor : double(max_pos) / double(original_len(s, max_pos));
}
}  // namespace

std::vector<float> rope_inv_freq(double theta, int64_t dim, const RopeScaling& s, int64_t max_pos,
                                 bool long_context) {
  const int64_t half = dim / 2;
  std::vector<double> f(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) f[size_t(i)] = 1.0 / std::pow(theta, double(2 * i) / double(dim));
  if (s.type == "linear") {
    for (auto& x : f) x /= s.factor;
  } else if (s.type == "llama3") {
    const double old_len = double(s.original_max_position_embeddings);
    const double low_wavelen = old_len / s.low_freq_factor, high_wavelen = old_len / s.high_freq_factor;
    for (auto& x : f) {
      const double wavelen = 2 * M_PI / x;
      if (wavelen < high_wavelen) continue;  // high frequencies stay
      if (wavelen > low_wavelen) {
        x /= s.factor;
      } else {  // smooth blend between the two regimes
        const double smooth = (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        x = (1 - smooth) * x / s.factor + smooth * x;
      }
    }
  } else if (s.type == "yarn") {
    f = yarn(f, theta, dim, scale_factor(s, max_pos), s, original_len(s, max_pos));
  } else if (s.type == "longrope") {
    const std::vector<double>& ext = long_context ? s.long_factor : s.short_factor;
    FORGE_CHECK(int64_t(ext.size()) == half, "rope_scaling: longrope factors have ", ext.size(), " entries, the ",
                dim, " rotary dims need ", half);
    for (int64_t i = 0; i < half; ++i) f[size_t(i)] /= ext[size_t(i)];
  }
  return std::vector<float>(f.begin(), f.end());
}

double rope_attention_factor(const RopeScaling& s, int64_t max_pos) {
  if (s.attention_factor > 0) return s.attention_factor;
  const double factor = scale_factor(s, max_pos);
  if (s.type == "yarn") {
    if (s.mscale > 0 && s.mscale_all_dim > 0) return yarn_mscale(factor, s.mscale) / yarn_mscale(factor, s.mscale_all_dim);
    return yarn_mscale(factor, 1.0);
  }
  if (s.type == "longrope")
    return factor <= 1 ? 1.0 : std::sqrt(1 + std::log(factor) / std::log(double(original_len(s, max_pos))));
  return 1.0;
}

}  // namespace forge::models
