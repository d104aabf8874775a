// safetensors: the header and every tensor's byte range against the file's size. The input is the
// whole file; every tensor the reader accepts is read to its last byte.
#include "core/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace forge;
  const std::string path = fuzz::write_file("model.safetensors", fuzz::as_text(data, size));
  fuzz::expect_clean_error([&] {
    SafetensorsFile f(path);
    for (const std::string& name : f.names()) {
      Tensor t = f.tensor(name);
      const auto* bytes = static_cast<const uint8_t*>(t.raw_data());
      unsigned sum = 0;
      for (size_t i = 0; i < t.nbytes(); ++i) sum += bytes[i];
      if (sum == 0x7fffffff) __builtin_trap();  // keeps the reads
    }
  });
  return 0;
}
