// Command-line options of the subcommands: `--name value` or `--name=value`, and switches.
#pragma once
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"

namespace forge::cli {

using Args = std::vector<std::string>;

// The options a subcommand takes: "--name" for a switch, "--name=" for one followed by a value
// (--help is always allowed), and up to max_positional other arguments (-1: any number). Throws for
// any other "--" argument, with the closest known name, a value option given last without its
// value, or one positional argument too many; nothing when --help or -h is there. Call it first:
// the lookups below then know which arguments are values (`--stop --max-tokens` is a stop string).
void check_flags(const Args& args, const std::vector<std::string>& options, int max_positional = 0);
// True if args contain flag (e.g. "--json") other than as an option's value; "--help" also
// matches "-h".
bool has_flag(const Args& args, const std::string& flag);
// Value after `--name` (or `--name=value`), or fallback.
std::string flag_value(const Args& args, const std::string& name, const std::string& fallback);
// Every value of a repeatable option, in order.
std::vector<std::string> flag_values(const Args& args, const std::string& name);
// Comma-separated values after `--name`, or fallback.
std::vector<std::string> flag_list(const Args& args, const std::string& name, const std::vector<std::string>& fallback);
// Value after `--name`; throws "--name WHAT is required" when it is missing or empty.
std::string required_flag(const Args& args, const std::string& name, const std::string& what);
// The whole value after `--name` read as an integer or a number in [lo, hi], or fallback when
// absent; anything else throws with the option, the range and what was given.
int64_t int_flag(const Args& args, const std::string& name, int64_t fallback, int64_t lo = INT64_MIN,
                 int64_t hi = INT64_MAX);
double number_flag(const Args& args, const std::string& name, double fallback, double lo = -HUGE_VAL,
                   double hi = HUGE_VAL);
// --device auto|cpu|cuda|cuda:N (default auto) made concrete on this machine (core/device.h):
// a device the machine lacks throws naming what is missing.
Device device_flag(const Args& args);
// --dtype: the dtype weights compute in (f32 or bf16); unset: the checkpoint's own.
std::optional<DType> dtype_flag(const Args& args);

}  // namespace forge::cli
