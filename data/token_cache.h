// Tokenised datasets cached in HDF5 (/tokens i32, /mask u8, /offsets i64, string attributes with
// the fingerprint and settings), reused while dataset, tokenizer and settings are unchanged.
// The files are plain HDF5: `h5dump -A cache.h5` or h5py read them.
#pragma once
#include <string>

#include "data/dataset.h"

namespace forge::data {

// Hash of the dataset bytes, the tokenizer files of model_dir and the options that change tokens.
std::string dataset_fingerprint(const std::string& data_path, const std::string& model_dir, const DatasetOptions& opt);

void save_example_set(const std::string& path, const ExampleSet& set, const std::string& fingerprint,
                      const DatasetStats& stats, const std::string& source);
// Fills `out` and returns true when path exists and carries this fingerprint.
bool load_example_set(const std::string& path, const std::string& fingerprint, ExampleSet& out,
                      DatasetStats* stats = nullptr);

// The cached set at cache_path when it is current, else read_dataset + save (cache_path "" = no cache).
// fingerprint (optional) receives dataset_fingerprint(), computed once here.
ExampleSet prepare_dataset(const std::string& data_path, const std::string& model_dir, const Tokenizer& tok,
                           const DatasetOptions& opt, const std::string& cache_path, DatasetStats* stats = nullptr,
                           bool* from_cache = nullptr, std::string* fingerprint = nullptr);

}  // namespace forge::data
