// `forge init-model`: writes a randomly initialised model as a complete HF directory
// (config.json, model.safetensors, generation_config.json, tokenizer.json, tokenizer_config.json).
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "core/error.h"
#include "core/file_util.h"
#include "models/registry.h"
#include "train/init_model.h"

namespace forge::cli {

int cmd_init_model(const Args& args) {
  check_flags(args, {"--out=", "--arch=", "--preset=", "--dtype=", "--tokenizer=", "--seed=", "--init-std=",
                     "--max-shard-mb="});
  if (has_flag(args, "--help")) {
    std::string archs;  // "llama, mistral, ..." -> "llama|mistral|..."
    for (char ch : models::architecture_types())
      if (ch != ' ') archs += ch == ',' ? '|' : ch;
    std::printf(
        "usage: forge init-model --out DIR [--arch %s] [--preset NAME] [--dtype f32|bf16]\n"
        "                        [--seed S] [--init-std X] [--tokenizer DIR] [--max-shard-mb N]\n\n"
        "Writes a random model as a Hugging Face directory. Presets: tiny, stories15M, gqa-60M, stories110M,\n"
        "llama-1b. Without --tokenizer a byte-level BPE tokenizer (Llama 3 style, with a chat template) is\n"
        "trained on a built-in text; with it, that directory's tokenizer files are copied and the vocab size\n"
        "follows them.\n",
        archs.c_str());
    return 0;
  }
  const std::string out = required_flag(args, "--out", "DIR");
  train::InitModelOptions o;
  o.arch = flag_value(args, "--arch", "llama");
  o.preset = flag_value(args, "--preset", "tiny");
  o.dtype = flag_value(args, "--dtype", "f32");
  o.tokenizer_dir = flag_value(args, "--tokenizer", "");
  o.seed = uint64_t(int_flag(args, "--seed", 0));
  o.init_std = number_flag(args, "--init-std", 0.02, 0, 100);
  o.max_shard_bytes = size_t(number_flag(args, "--max-shard-mb", 0, 0, 1e9) * double(1 << 20));
  train::init_random_model(out, o);
  return 0;
}

}  // namespace forge::cli
