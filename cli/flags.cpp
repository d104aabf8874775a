#include "cli/flags.h"

#include <algorithm>

#include "core/error.h"
#include "core/suggest.h"

namespace forge::cli {

void check_flags(const Args& args, const std::vector<std::string>& options, int max_positional) {
  int positional = 0;
  std::vector<std::string> names;
  for (auto& o : options) names.push_back(o.back() == '=' ? o.substr(0, o.size() - 1) : o);
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") continue;
    if (a.rfind("--", 0) != 0) {
      if (max_positional >= 0 && ++positional > max_positional)
        throw Error("unexpected argument '" + a + "' (options start with --; --help lists them)");
      continue;
    }
    const size_t eq = a.find('=');
    const std::string name = a.substr(0, eq);
    auto it = std::find(names.begin(), names.end(), name);
    if (it == names.end()) throw Error("unknown option '" + name + "'" + did_you_mean(name, names) + "; --help lists them");
    const bool takes_value = options[size_t(it - names.begin())].back() == '=';
    if (!takes_value && eq != std::string::npos) throw Error(name + " takes no value");
    if (takes_value && eq == std::string::npos) {
      if (i + 1 == args.size()) throw Error(name + " needs a value");
      ++i;  // the value may itself start with "--" (a prompt, a stop string)
    }
  }
}

bool has_flag(const Args& args, const std::string& flag) { return std::find(args.begin(), args.end(), flag) != args.end(); }

std::vector<std::string> flag_values(const Args& args, const std::string& name) {
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == name && i + 1 < args.size()) out.push_back(args[++i]);
    else if (args[i].rfind(name + "=", 0) == 0) out.push_back(args[i].substr(name.size() + 1));
  }
  return out;
}

std::string flag_value(const Args& args, const std::string& name, const std::string& fallback) {
  auto v = flag_values(args, name);
  return v.empty() ? fallback : v.front();
}

std::vector<std::string> flag_list(const Args& args, const std::string& name,
                                   const std::vector<std::string>& fallback) {
  const std::string v = flag_value(args, name, "");
  if (v.empty()) return fallback;
  std::vector<std::string> out;
  for (size_t at = 0;;) {
    const size_t comma = v.find(',', at);
    out.push_back(v.substr(at, comma - at));
    if (comma == std::string::npos) return out;
    at = comma + 1;
  }
}

std::string required_flag(const Args& args, const std::string& name, const std::string& what) {
  std::string v = flag_value(args, name, "");
  if (v.empty()) throw Error(name + " " + what + " is required");
  return v;
}

namespace {

template <class T>
std::string range_text(const char* kind, T lo, T hi, T min, T max) {
  std::string s = kind;
  if (lo != min && hi != max) s += detail::cat(" from ", lo, " to ", hi);
  else if (lo != min) s += detail::cat(" >= ", lo);
  else if (hi != max) s += detail::cat(" <= ", hi);
  return s;
}

}  // namespace

int64_t int_flag(const Args& args, const std::string& name, int64_t fallback, int64_t lo, int64_t hi) {
  const std::string v = flag_value(args, name, "");
  if (v.empty()) return fallback;
  try {
    size_t used = 0;
    const long long x = std::stoll(v, &used);
    if (used == v.size() && x >= lo && x <= hi) return x;
  } catch (const std::exception&) {
  }
  throw Error(name + ": expected " + range_text("an integer", lo, hi, INT64_MIN, INT64_MAX) + ", got '" + v + "'");
}

double number_flag(const Args& args, const std::string& name, double fallback, double lo, double hi) {
  const std::string v = flag_value(args, name, "");
  if (v.empty()) return fallback;
  try {
    size_t used = 0;
    const double x = std::stod(v, &used);
    if (used == v.size() && x >= lo && x <= hi) return x;  // NaN fails both
  } catch (const std::exception&) {
  }
  throw Error(name + ": expected " + range_text("a number", lo, hi, -HUGE_VAL, HUGE_VAL) + ", got '" + v + "'");
}

}  // namespace forge::cli
