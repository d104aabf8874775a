// Random HF model directories (see init_model.h).
#include "train/init_model.h"

#include <cstdio>
#include <filesystem>

#include "core/file_util.h"
#include "data/make_tokenizer.h"
#include "data/tokenizer.h"
#include "models/causal_lm.h"
#include "models/pretrained.h"
#include "models/presets.h"

namespace forge::train {

models::ModelConfig init_random_model(const std::string& out, const InitModelOptions& o) {
  models::ModelConfig c = models::preset_config(o.arch, o.preset);
  c.dtype = dtype_from_name(o.dtype);
  std::filesystem::create_directories(out);
  if (!o.tokenizer_dir.empty()) {
    auto tok = data::Tokenizer::from_dir(o.tokenizer_dir);
    for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
      if (file_exists(o.tokenizer_dir + "/" + f)) write_file_atomic(out + "/" + f, read_text_file(o.tokenizer_dir + "/" + f));
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
  auto made = models::CausalLM::unfilled(c, c.dtype);
  models::CausalLM& model = *made;
  model.init_weights(o.init_std, o.seed);
  models::save_model(model, out, o.max_shard_bytes);
  std::fprintf(stderr, "forge: random %s %s, %.1fM parameters, vocab %lld -> %s\n", c.architecture.c_str(),
               o.preset.c_str(), double(model.num_parameters()) / 1e6, (long long)c.vocab_size, out.c_str());
  return c;
}

}  // namespace forge::train
