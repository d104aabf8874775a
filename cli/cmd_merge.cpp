// `forge merge --base DIR --adapter DIR --out DIR`: folds a PEFT LoRA adapter into the base
// weights and writes a plain Hugging Face directory in the base's dtype.
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "core/error.h"
#include "models/pretrained.h"
#include "peft/adapter_io.h"

namespace forge::cli {

int cmd_merge(const Args& args) {
  check_flags(args, {"--base=", "--adapter=", "--out=", "--max-shard-mb="});
  if (has_flag(args, "--help")) {
    std::printf(
        "usage: forge merge --base DIR --adapter DIR --out DIR [--max-shard-mb N]\n\n"
        "Merges a LoRA adapter (PEFT layout, from forge train or elsewhere) into its base model:\n"
        "W += scale * B A for every adapted layer, computed in f32 and stored in the base's dtype.\n"
        "Writes config.json, safetensors (sharded above --max-shard-mb, default 5000, with\n"
        "model.safetensors.index.json), generation_config.json and the tokenizer files.\n");
    return 0;
  }
  const std::string base = required_flag(args, "--base", "DIR");
  const std::string adapter = required_flag(args, "--adapter", "DIR");
  const std::string out = required_flag(args, "--out", "DIR");
  FORGE_CHECK(std::filesystem::absolute(out) != std::filesystem::absolute(base), "--out must differ from --base");
  const size_t shard = size_t(number_flag(args, "--max-shard-mb", 5000, 0.001, 1e9) * 1e6);
  std::fprintf(stderr, "forge merge: [1/3] loading %s\n", base.c_str());
  auto model = models::load_model(base);
  std::fprintf(stderr, "forge merge: [2/3] merging %s\n", adapter.c_str());
  peft::LoraModel lora = peft::load_adapter(*model, adapter);
  const size_t n = lora.adapters.size();
  peft::merge_lora(*model, lora);
  std::fprintf(stderr, "forge merge: [3/3] writing %s (%zu layers merged, %s)\n", out.c_str(), n,
               dtype_name(model->dtype()));
  models::copy_model_files(base, out);
  models::save_model(*model, out, shard);
  std::printf("%s\n", out.c_str());
  return 0;
}

}  // namespace forge::cli
