// llama2.c checkpoints (`forge` loads a .bin as a model): the header's sizes against the file.
#include "models/llama2c.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace forge;
  const std::string path = fuzz::write_file("model.bin", fuzz::as_text(data, size));
  fuzz::expect_clean_error([&] { (void)models::load_llama2c(path); });
  return 0;
}
