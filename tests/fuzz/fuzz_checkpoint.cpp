// HDF5 checkpoints: the bytes of a checkpoint file (the corpus holds real ones) loaded as a resume
// would, checksums included.
#include "train/checkpoint.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace forge;
  const std::string path = fuzz::write_file("checkpoints/step_00000004.h5", fuzz::as_text(data, size));
  fuzz::expect_clean_error([&] {
    train::Checkpoint c = train::load_checkpoint(path);
    for (const auto& [name, t] : c.tensors) (void)t.to_float_vector();
  });
  return 0;
}
