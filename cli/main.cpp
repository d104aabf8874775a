// forge: finetune and serve LLMs. Dispatches to one subcommand per file; errors print one line.
#include <cstdio>
#include <cstring>
#include <exception>

#include "cli/commands.h"
#include "core/error.h"
#include "parallel/comm.h"

namespace forge::cli {

namespace {
struct Command {
  const char* name;
  const char* help;
  int (*fn)(const Args&);
};
const Command kCommands[] = {
    {"bench", "measure speed: `forge bench ops [--json] [--quick]`", cmd_bench},
    {"data", "tokenise a recipe's datasets into the HDF5 token cache: `forge data prepare RECIPE`", cmd_data},
    {"demo", "train a tiny attention model on a synthetic task and show the loss fall", cmd_demo},
    {"eval", "exact-match accuracy of greedy answers on a JSONL of prompts and reference answers", cmd_eval},
    {"generate", "continue a prompt or a chat with a model directory", cmd_generate},
    {"info", "print the build: threads, GEMM backend, CUDA devices", cmd_info},
    {"init-model", "write a random model as a Hugging Face directory (tests, examples)", cmd_init_model},
    {"merge", "fold a LoRA adapter into its base model and write a Hugging Face directory", cmd_merge},
    {"serve", "OpenAI-compatible server: `forge serve --model DIR [--port P] [--lora NAME=DIR ...]`", cmd_serve},
    {"template", "render a model's chat template for a conversation on stdin", cmd_template},
    {"tokenize", "text to token ids (JSON) and back with a model's tokenizer", cmd_tokenize},
    {"train", "finetune a model from a YAML recipe (LoRA or full): `forge train RECIPE [key=value ...]`", cmd_train},
};

void usage(FILE* out) {
  std::fprintf(out, "usage: forge <command> [options]   (forge <command> --help for details)\n\ncommands:\n");
  for (auto& c : kCommands) std::fprintf(out, "  %-10s %s\n", c.name, c.help);
}
}  // namespace
}  // namespace forge::cli

int main(int argc, char** argv) {
  using namespace forge::cli;
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    usage(stdout);
    return argc < 2 ? 1 : 0;
  }
  Args args(argv + 2, argv + argc);
  for (auto& c : kCommands) {
    if (std::strcmp(argv[1], c.name) != 0) continue;
    try {
      const int rc = c.fn(args);
      forge::parallel::finalize();
      return rc;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "forge %s: error: %s\n", c.name, e.what());
      // Under mpirun one failing rank ends the job, so no other rank waits for it.
      if (forge::parallel::mpi_initialized()) forge::parallel::abort_job(1);
      return 1;
    }
  }
  std::fprintf(stderr, "forge: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return 2;
}
