// PEFT adapter_config.json: read and checked (rank, alpha, target modules, the options Forge
// cannot honour refused by name).
#include "peft/adapter_io.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace forge;
  const std::string path = fuzz::write_file("adapter/adapter_config.json", fuzz::as_text(data, size));
  fuzz::expect_clean_error([&] { (void)peft::read_adapter_config(path.substr(0, path.rfind('/'))); });
  return 0;
}
