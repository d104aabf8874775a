// `forge init-model`: writes a randomly initialised model as a complete HF directory
// (config.json, model.safetensors, generation_config.json, tokenizer.json, tokenizer_config.json).
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "core/error.h"
#include "core/file_util.h"
#include "data/make_tokenizer.h"
#include "data/tokenizer.h"
#include "models/pretrained.h"
#include "models/presets.h"

namespace forge::cli {

int cmd_init_model(const Args& args) {
  if (has_flag(args, "--help")) {
    std::printf(
        "usage: forge init-model --out DIR [--arch llama|mistral|qwen2] [--preset NAME] [--dtype f32|bf16]\n"
        "                        [--seed S] [--init-std X] [--tokenizer DIR] [--max-shard-mb N]\n\n"
        "Writes a random model as a Hugging Face directory. Presets: tiny, stories15M, gqa-60M, stories110M,\n"
        "llama-1b. Without --tokenizer a byte-level BPE tokenizer (Llama 3 style, with a chat template) is\n"
        "trained on a built-in text; with it, that directory's tokenizer files are copied and the vocab size\n"
        "follows them.\n");
    return 0;
  }
  const std::string out = required_flag(args, "--out", "DIR");
  models::ModelConfig c = models::preset_config(flag_value(args, "--arch", "llama"), flag_value(args, "--preset", "tiny"));
  c.dtype = dtype_from_name(flag_value(args, "--dtype", "f32"));
  std::filesystem::create_directories(out);

  const std::string tok_dir = flag_value(args, "--tokenizer", "");
  if (!tok_dir.empty()) {
    auto tok = data::Tokenizer::from_dir(tok_dir);
    for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
      if (file_exists(tok_dir + "/" + f)) write_file_atomic(out + "/" + f, read_text_file(tok_dir + "/" + f));
    c.vocab_size = tok->vocab_size();
    c.bos_token_id = tok->bos_id();
    c.eos_token_ids = {tok->eos_id()};
  } else {
    data::TokenizerFiles t = data::make_byte_level_tokenizer(c.vocab_size);
    data::save_tokenizer_files(t, out);
    c.bos_token_id = t.bos_id;
    c.eos_token_ids = {t.eos_id, t.eot_id};
  }
  std::remove((out + "/generation_config.json").c_str());  // save_model writes a fresh one
  models::CausalLM model(c, c.dtype);
  model.init_weights(std::stod(flag_value(args, "--init-std", "0.02")), std::stoull(flag_value(args, "--seed", "0")));
  models::save_model(model, out, size_t(std::stoll(flag_value(args, "--max-shard-mb", "0"))) << 20);
  std::fprintf(stderr, "forge init-model: %s %s, %.1fM parameters, vocab %lld -> %s\n", c.architecture.c_str(),
               flag_value(args, "--preset", "tiny").c_str(), double(model.num_parameters()) / 1e6,
               (long long)c.vocab_size, out.c_str());
  return 0;
}

}  // namespace forge::cli
