// safetensors: a memory-mapped reader that checks every header field against the file, a writer,
// and model weights spread over one file or shards (`model.safetensors.index.json`).
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace forge {

struct SafetensorsEntry {
  DType dtype;
  Shape shape;
  size_t begin = 0, end = 0;  // byte range within the data section
};

class SafetensorsFile {
 public:
  // Maps the file and validates the header; a truncated or hostile file is a forge::Error.
  explicit SafetensorsFile(const std::string& path);
  const std::string& path() const { return path_; }
  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const { return entries_.count(name) > 0; }
  const SafetensorsEntry& entry(const std::string& name) const;
  // A CPU tensor over the mapped bytes (no copy when the data is aligned for its dtype). Asked
  // again while one is alive, it returns a view of the same memory. When the last view is gone,
  // the whole pages inside its bytes leave this process's resident memory (MADV_DONTNEED; the
  // file stays mapped for the others): a weight replaced after loading (QLoRA's NF4, a dtype
  // change) then stops costing memory.
  Tensor tensor(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::string path_;
  std::shared_ptr<void> map_;  // munmaps when the last tensor view is gone
  const char* data_ = nullptr;  // start of the data section
  std::map<std::string, SafetensorsEntry> entries_;
  std::map<std::string, std::string> metadata_;
  mutable std::map<std::string, std::weak_ptr<Storage>> live_;  // views handed out, by name
};

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// Writes tensors (sorted by name, header padded to 8 bytes) atomically: tmp, fsync, rename.
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// The weights of a model directory: `model.safetensors`, or the shards named by
// `model.safetensors.index.json`.
class WeightFiles {
 public:
  explicit WeightFiles(const std::string& dir);
  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const { return where_.count(name) > 0; }
  const SafetensorsEntry& entry(const std::string& name) const;
  Tensor tensor(const std::string& name) const;
  const std::string& file_of(const std::string& name) const;

 private:
  const SafetensorsFile& file_with(const std::string& name) const;  // throws when absent
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;
};

// Saves into dir as `model.safetensors`, or as `model-0000i-of-0000n.safetensors` shards plus the
// index when the total exceeds max_shard_bytes (0: never shard). Tensors keep the given order
// within shards; shards split between tensors.
void save_weights(const std::string& dir, const NamedTensors& tensors, size_t max_shard_bytes = 0,
                  const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace forge
