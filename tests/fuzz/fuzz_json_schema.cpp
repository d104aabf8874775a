// Structured outputs: a fuzzed JSON Schema compiled (a NUL byte ends it), then the matcher fed the
// bytes after the NUL one at a time, as the sampler tries each token's bytes on a copy.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "infer/json_matcher.h"
#include "infer/json_schema.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace forge;
  const std::string_view all = fuzz::as_text(data, size);
  const size_t nul = all.find('\0');
  const std::string_view schema_text = all.substr(0, nul);
  const std::string_view output = nul == std::string_view::npos ? std::string_view() : all.substr(nul + 1);
  nlohmann::json schema = nlohmann::json::parse(schema_text, nullptr, /*allow_exceptions=*/false);
  if (schema.is_discarded()) return 0;
  fuzz::expect_clean_error([&] {
    std::shared_ptr<const infer::JsonSchema> compiled = infer::JsonSchema::compile(schema);
    infer::JsonMatcher m(compiled);
    std::string accepted;
    for (unsigned char c : output) {
      infer::JsonMatcher trial = m;  // the sampler's way: try on a copy, keep it when accepted
      if (!trial.feed(c)) break;
      m = trial;
      accepted += char(c);
    }
    // What the matcher calls a complete value must be JSON.
    if (m.complete() && !nlohmann::json::accept(accepted)) {
      std::fprintf(stderr, "matcher completed on text that is not JSON: %s\n", accepted.c_str());
      __builtin_trap();
    }
    (void)m.done();
  });
  return 0;
}
