// config.json (first byte even) or generation_config.json (odd), the rest being the file, read
// from a model folder as `forge` reads them: every field's checks, the sampling defaults and the
// stop ids.
#include "models/config.h"
#include "models/pretrained.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace forge;
  if (size == 0) return 0;
  const bool generation = data[0] & 1;
  const std::string_view text = fuzz::as_text(data + 1, size - 1);
  const std::string path = fuzz::write_file(generation ? "model/generation_config.json" : "model/config.json", text);
  const std::string dir = path.substr(0, path.rfind('/'));
  if (!generation) {
    fuzz::expect_clean_error([&] {
      models::ModelConfig c = models::load_config(dir);
      (void)models::config_to_json(c).dump();
      (void)c.inv_freq(false);
    });
    return 0;
  }
  fuzz::expect_clean_error([&] { (void)models::generation_defaults(dir); });
  fuzz::expect_clean_error([&] {
    models::ModelConfig c;
    c.eos_token_ids = {2};
    (void)models::stop_token_ids(dir, c);
  });
  return 0;
}
