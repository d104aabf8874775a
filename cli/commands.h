// Subcommands of `forge`, one per file; each takes the arguments after its name.
#pragma once
#include <string>
#include <vector>

#include "cli/flags.h"

namespace forge::cli {

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

}  // namespace forge::cli
