// Training checkpoints: one HDF5 file per saved step (trainable weights, optimiser state, RNG
// states, data cursor as attributes), written atomically (temp name, fsync, rename) so a crash
// never leaves a half-written file under a checkpoint's name; the newest K are kept. A checksum
// of every tensor's bytes is kept too: a file whose bytes changed afterwards (a flipped bit on a
// disk, a truncated copy) is refused when loaded rather than resumed from.
#pragma once
#include <climits>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/hdf5_io.h"
#include "core/tensor.h"

namespace forge::train {

struct Checkpoint {
  std::string path;
  int64_t step = 0;
  std::map<std::string, Tensor> tensors;
  Hdf5Attrs attrs;
};

std::string checkpoint_path(const std::string& dir, int64_t step);  // dir/step_00000042.h5
// Writes the checkpoint (attrs get "step" and "complete") and deletes all but the newest `keep`.
void save_checkpoint(const std::string& dir, int64_t step, const std::map<std::string, Tensor>& tensors,
                     Hdf5Attrs attrs, int64_t keep);
// Checkpoint files in dir, newest step first (leftover temp files are not listed).
std::vector<std::string> list_checkpoints(const std::string& dir);
// Loads the newest checkpoint (of a step below `below`) that reads completely and matches its
// checksum; others are reported in `skipped` ("path: reason") and passed over. False when there
// is none.
bool load_latest_checkpoint(const std::string& dir, Checkpoint& out, std::vector<std::string>* skipped = nullptr,
                            int64_t below = INT64_MAX);
Checkpoint load_checkpoint(const std::string& path);  // throws naming the file when it is not valid

}  // namespace forge::train
