// Recipes: fuzzed YAML and overrides (the lines after a line "%%" are "key=value" overrides) through
// parsing and validation, then the resolved recipe written back as YAML and read again.
#include <cstdio>

#include "train/recipe.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace forge;
  std::string text(fuzz::as_text(data, size));
  std::vector<std::string> overrides;
  const size_t cut = text.find("\n%%\n");
  if (cut != std::string::npos) {
    std::string rest = text.substr(cut + 4);
    text.resize(cut);
    for (size_t pos = 0; pos <= rest.size();) {
      size_t e = rest.find('\n', pos);
      if (e == std::string::npos) e = rest.size();
      overrides.push_back(rest.substr(pos, e - pos));
      pos = e + 1;
    }
  }
  fuzz::expect_clean_error([&] {
    train::Recipe r = train::parse_recipe(text, "fuzzed.yaml", overrides);
    // What a run saves as recipe.yaml must read back.
    const std::string saved = train::recipe_to_yaml(r);
    try {
      (void)train::parse_recipe(saved, "recipe.yaml");
    } catch (const forge::Error& e) {
      std::fprintf(stderr, "the saved recipe does not read back: %s\n%s\n", e.what(), saved.c_str());
      __builtin_trap();
    }
  });
  return 0;
}
