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
// Writes to path + ".tmp", fsyncs, then renames: a crash never leaves a half-written file at path.
void save_hdf5(const std::string& path, const std::map<std::string, Tensor>& tensors, const Hdf5Attrs& attrs = {});

}  // namespace forge
