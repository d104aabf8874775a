// `forge data prepare RECIPE [key=value ...]`: tokenises the recipe's datasets into the HDF5
// token cache that `forge train` reuses (<output.dir>/data/train.h5, eval.h5).
#include <cstdio>

#include "cli/commands.h"
#include "core/error.h"
#include "data/tokenizer.h"
#include "train/datasets.h"
#include "train/recipe.h"

namespace forge::cli {

int cmd_data(const Args& args) {
  if (args.size() < 2 || args[0] != "prepare" || has_flag(args, "--help")) {
    std::printf(
        "usage: forge data prepare RECIPE.yaml [section.key=value ...]\n\n"
        "Reads the recipe's data.path (and data.eval_path), renders and tokenises every example with\n"
        "the model's tokenizer and chat template, and writes the token cache to <output.dir>/data/\n"
        "(HDF5: /tokens, /mask, /offsets and attributes; h5dump or h5py read it). forge train reuses\n"
        "it while the dataset, tokenizer and data settings are unchanged.\n");
    return has_flag(args, "--help") ? 0 : 1;
  }
  check_flags(args, {}, -1);
  train::Recipe r = train::load_recipe(args[1], Args(args.begin() + 2, args.end()));
  FORGE_CHECK(r.data.cache, "data.cache is false: nothing would be written");
  auto tok = data::Tokenizer::from_dir(r.model.path);
  train::Datasets d = train::load_datasets(r, *tok);
  std::printf("%s/data/train.h5\n", r.output.dir.c_str());
  return 0;
}

}  // namespace forge::cli
