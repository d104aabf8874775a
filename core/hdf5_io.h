// Named tensors in HDF5 files (one dataset per tensor, '/'-separated names for groups).
// f32/i32/i64/u8 map to native HDF5 types; bf16/f16 are stored as uint16 with a "dtype" attribute.
#pragma once
#include <map>
#include <string>

#include "core/tensor.h"

namespace forge {

using Hdf5Attrs = std::map<std::string, std::string>;  // string attributes of the root group

std::map<std::string, Tensor> load_hdf5(const std::string& path);
Hdf5Attrs load_hdf5_attrs(const std::string& path);
// Writes to path + ".tmp", seals it, fsyncs, then renames: a crash never leaves a half-written
// file at path. The seal (in HDF5's user block, which every HDF5 reader skips) holds the size and a
// checksum of the rest of the file.
void save_hdf5(const std::string& path, const std::map<std::string, Tensor>& tensors, const Hdf5Attrs& attrs = {});

// Throws naming the file unless its seal matches its bytes. Checkpoints and token caches, which
// Forge writes and reads back, are checked before libhdf5 opens them: libhdf5 is not safe on
// altered files. Files from other programs (h5py) have no seal and are read without this check.
void check_hdf5_seal(const std::string& path);

}  // namespace forge
