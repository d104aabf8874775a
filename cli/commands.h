// Subcommands of `forge`, one per file; each takes the arguments after its name.
#pragma once
#include <string>
#include <vector>

namespace forge::cli {

using Args = std::vector<std::string>;
int cmd_bench(const Args& args);
int cmd_data(const Args& args);
int cmd_demo(const Args& args);
int cmd_eval(const Args& args);
int cmd_info(const Args& args);
int cmd_init_model(const Args& args);
int cmd_merge(const Args& args);
int cmd_generate(const Args& args);
int cmd_serve(const Args& args);
int cmd_template(const Args& args);
int cmd_tokenize(const Args& args);
int cmd_train(const Args& args);

// True if args contain flag (e.g. "--json"); removes nothing.
bool has_flag(const Args& args, const std::string& flag);
// Value after `--name` (or `--name=value`), or fallback.
std::string flag_value(const Args& args, const std::string& name, const std::string& fallback);
// Comma-separated values after `--name`, or fallback.
std::vector<std::string> flag_list(const Args& args, const std::string& name, const std::vector<std::string>& fallback);
// Value after `--name`; throws "--name WHAT is required" when it is missing or empty.
std::string required_flag(const Args& args, const std::string& name, const std::string& what);

}  // namespace forge::cli
