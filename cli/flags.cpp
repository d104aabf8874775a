#include "cli/flags.h"

#include <algorithm>

#include "core/error.h"
#include "core/suggest.h"

namespace forge::cli {

namespace {
// The options of the last check_flags call ("--name=" takes a value), so that the lookups below
// know which arguments are values: `--prompt --stop --stop x` has one --stop, whose value is x.
std::vector<std::string>& layout() {
  static std::vector<std::string> options;
  return options;
}

bool takes_value(const std::string& name) {
  const auto& o = layout();
  return std::find(o.begin(), o.end(), name + "=") != o.end();
}

// Calls f(name, value, has_value) for each argument that is not an option's value (a value is
// never read as an option; other arguments come with has_value false).
// Without a layout, an option takes the next argument as its value only when it is `wanted`.
template <class F>
void each_option(const Args& args, const std::string& wanted, F f) {
  const bool known = !layout().empty();
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const size_t eq = a.rfind("--", 0) == 0 ? a.find('=') : std::string::npos;
    if (a.rfind("--", 0) != 0) {
      f(a, std::string(), false);  // a positional argument, or -h
    } else if (eq != std::string::npos) {
      f(a.substr(0, eq), a.substr(eq + 1), true);
    } else if ((known ? takes_value(a) : a == wanted) && i + 1 < args.size()) {
      f(a, args[i + 1], true);
      ++i;
    } else {
      f(a, std::string(), false);
    }
  }
}
}  // namespace

void check_flags(const Args& args, const std::vector<std::string>& options, int max_positional) {
  layout() = options;
  layout().push_back("--help");
  if (has_flag(args, "--help")) return;  // the help, whatever else is there
  int positional = 0;
  std::vector<std::string> names;
  for (auto& o : options) names.push_back(o.back() == '=' ? o.substr(0, o.size() - 1) : o);
  // The same walk as the lookups: a value (which may start with "--": a prompt, a stop string)
  // is never checked as an option.
  each_option(args, "", [&](const std::string& name, const std::string&, bool has_value) {
    if (name.rfind("--", 0) != 0) {
      if (max_positional >= 0 && ++positional > max_positional)
        throw Error("unexpected argument '" + name + "' (options start with --; --help lists them)");
      return;
    }
    if (std::find(names.begin(), names.end(), name) == names.end())
      throw Error("unknown option '" + name + "'" + did_you_mean(name, names) + "; --help lists them");
    if (has_value != takes_value(name)) throw Error(name + (has_value ? " takes no value" : " needs a value"));
  });
}

bool has_flag(const Args& args, const std::string& flag) {
  bool found = false;
  each_option(args, "", [&](const std::string& name, const std::string&, bool has_value) {
    found |= (name == flag || (flag == "--help" && name == "-h")) && !has_value;
  });
  return found;
}

std::vector<std::string> flag_values(const Args& args, const std::string& name) {
  std::vector<std::string> out;
  each_option(args, name, [&](const std::string& n, const std::string& v, bool has_value) {
    if (n == name && has_value) out.push_back(v);
  });
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

Device device_flag(const Args& args) { return resolve_device(flag_value(args, "--device", "auto"), "--device"); }

std::optional<DType> dtype_flag(const Args& args) {
  const std::string v = flag_value(args, "--dtype", "");
  if (v.empty()) return std::nullopt;
  if (v != "f32" && v != "bf16") throw Error("--dtype: expected f32 or bf16, got '" + v + "'");
  return dtype_from_name(v);
}

}  // namespace forge::cli
