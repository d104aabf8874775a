// The tokenized-dataset cache (HDF5): a fuzzed cache file read as `forge train` reads its cache; a
// set it accepts must be consistent.
#include <cstdio>

#include "data/token_cache.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace forge;
  const std::string path = fuzz::write_file("cache.h5", fuzz::as_text(data, size));
  fuzz::expect_clean_error([&] {
    data::ExampleSet set;
    data::DatasetStats stats;
    if (!data::load_example_set(path, "fuzz-fingerprint", set, &stats)) return;
    bool ok = set.tokens.size() == set.mask.size() && !set.offsets.empty() && set.offsets[0] == 0 &&
              set.offsets.back() == int64_t(set.tokens.size());
    for (int64_t i = 0; ok && i < set.size(); ++i) ok = set.length(i) >= 0;
    if (!ok) {
      std::fprintf(stderr, "load_example_set accepted an inconsistent set\n");
      __builtin_trap();
    }
  });
  return 0;
}
