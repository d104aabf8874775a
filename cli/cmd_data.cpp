// `forge data prepare RECIPE [key=value ...]`: tokenises the recipe's datasets into the HDF5
// token cache that `forge train` reuses (<output.dir>/data/train.h5, eval.h5); `forge data
// inspect` prints rows with their targets marked.
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "cli/commands.h"
#include "core/error.h"
#include "data/dataset.h"
#include "data/preference.h"
#include "data/tokenizer.h"
#include "train/datasets.h"
#include "train/recipe.h"

namespace forge::cli {

namespace {
// `forge data inspect`: the rows as the trainer sees them, targets marked, so a person can check
// the mask (which tokens the loss learns) on their own template and data.
int inspect(const Args& args) {
  check_flags(args, {"--rows=", "--first="}, -1);
  Args overrides;  // section.key=value arguments after the recipe, flags and their values left out
  for (size_t i = 2; i < args.size(); ++i) {
    if (args[i].rfind("--", 0) == 0) {
      if (args[i].find('=') == std::string::npos) ++i;  // "--rows 5": skip the value too
      continue;
    }
    overrides.push_back(args[i]);
  }
  train::Recipe r = train::load_recipe(args[1], overrides);
  auto tok = data::Tokenizer::from_dir(r.model.path);
  const int64_t rows = int_flag(args, "--rows", 3, 1), first = int_flag(args, "--first", 1, 1);
  const bool tty = isatty(fileno(stdout));
  const char* open = tty ? "\033[1;32m" : "\u27e6";  // bold green, or the bracket
  const char* close = tty ? "\033[0m" : "\u27e7";
  std::ifstream f(r.data.path);
  FORGE_CHECK(f, r.data.path, ": cannot open");
  std::string line, format = r.data.format;
  int64_t lineno = 0, shown = 0;
  // One example: a header line, then the text in runs of equal mask (special tokens shown).
  auto print = [&](const std::vector<int64_t>& ids, const std::vector<uint8_t>& mask, const std::string& what) {
    int64_t targets = 0;
    for (uint8_t m : mask) targets += m;
    std::printf("%s:%lld (%s): %zu tokens, %lld targets %s...%s\n", r.data.path.c_str(), (long long)lineno,
                what.c_str(), ids.size(), (long long)targets, open, close);
    for (size_t b = 0; b < ids.size();) {
      size_t e = b;
      while (e < ids.size() && mask[e] == mask[b]) ++e;
      const std::string text = tok->decode(std::vector<int64_t>(ids.begin() + long(b), ids.begin() + long(e)), false, false);
      if (mask[b]) std::printf("%s%s%s", open, text.c_str(), close);
      else std::fputs(text.c_str(), stdout);
      b = e;
    }
    std::printf("\n\n");
  };
  while (shown < rows && std::getline(f, line)) {
    if (++lineno < first || line.find_first_not_of(" \t\r") == std::string::npos) continue;
    ++shown;
    try {
      const data::ojson row = data::ojson::parse(line);
      if (format == "auto") format = data::detect_format(row);
      if (format == "preference") {  // both sides, each a row of its own
        const data::PreferenceTokens p = data::tokenize_preference(row, *tok);
        print(p.ids[0], p.mask[0], "preference, chosen");
        print(p.ids[1], p.mask[1], "preference, rejected");
        continue;
      }
      std::vector<int64_t> ids;
      std::vector<uint8_t> mask;
      data::tokenize_example(row, format, *tok, r.data.train_on_prompt, ids, mask);
      print(ids, mask, format);
    } catch (const std::exception& e) {
      std::printf("%s:%lld: %s\n\n", r.data.path.c_str(), (long long)lineno, e.what());
    }
  }
  return 0;
}
}  // namespace

int cmd_data(const Args& args) {
  if (args.size() < 2 || (args[0] != "prepare" && args[0] != "inspect") || has_flag(args, "--help")) {
    std::printf(
        "usage: forge data prepare RECIPE.yaml [section.key=value ...]\n"
        "       forge data inspect RECIPE.yaml [--rows 3] [--first 1] [section.key=value ...]\n\n"
        "prepare reads the recipe's data.path (and data.eval_path), renders and tokenises every example\n"
        "with the model's tokenizer and chat template, and writes the token cache to <output.dir>/data/\n"
        "(HDF5: /tokens, /mask, /offsets and attributes; h5dump or h5py read it). forge train reuses\n"
        "it while the dataset, tokenizer and data settings are unchanged.\n"
        "inspect prints rows of data.path as the trainer tokenises them, decoded with special tokens,\n"
        "the targets (the tokens the loss learns) marked: green on a terminal, else between \u27e6 and \u27e7.\n");
    return has_flag(args, "--help") ? 0 : 1;
  }
  if (args[0] == "inspect") return inspect(args);
  check_flags(args, {}, -1);
  train::Recipe r = train::load_recipe(args[1], Args(args.begin() + 2, args.end()));
  FORGE_CHECK(r.data.cache, "data.cache is false: nothing would be written");
  auto tok = data::Tokenizer::from_dir(r.model.path);
  train::Datasets d = train::load_datasets(r, *tok);
  std::printf("%s/data/train.h5\n", r.output.dir.c_str());
  return 0;
}

}  // namespace forge::cli
