// safetensors reading (mmap, bounds-checked), writing, and sharded model weights.
// Format: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}},
// then the data section; offsets are relative to the data section.
#include "core/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_util.h"

namespace forge {
namespace {
using json = nlohmann::json;
constexpr uint64_t kMaxHeader = 100ull << 20;  // the reference implementation's limit

DType parse_dtype(const std::string& s, const std::string& where) {
  if (s == "F32") return DType::F32;
  if (s == "BF16") return DType::BF16;
  if (s == "F16") return DType::F16;
  if (s == "I32") return DType::I32;
  if (s == "I64") return DType::I64;
  if (s == "U8") return DType::U8;
  throw Error(where + ": unsupported dtype '" + s + "' (Forge reads F32, BF16, F16, I32, I64, U8)");
}

const char* dtype_tag(DType d) {
  switch (d) {
    case DType::F32: return "F32";
    case DType::BF16: return "BF16";
    case DType::F16: return "F16";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
    case DType::U8: return "U8";
  }
  return "?";
}

std::string dir_join(const std::string& dir, const std::string& name) {
  return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}
}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  FORGE_CHECK(fd >= 0, path, ": cannot open (", std::strerror(errno), ")");
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw Error(path + ": cannot stat");
  }
  const uint64_t size = uint64_t(st.st_size);
  if (size < 8) {
    ::close(fd);
    throw Error(path + ": not a safetensors file (" + std::to_string(size) + " bytes, need at least 8)");
  }
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);  // writes stay private
  ::close(fd);
  FORGE_CHECK(p != MAP_FAILED, path, ": mmap failed (", std::strerror(errno), ")");
  map_ = std::shared_ptr<void>(p, [size](void* q) { ::munmap(q, size); });
  const char* base = static_cast<const char*>(p);

  uint64_t n = 0;
  std::memcpy(&n, base, 8);
  FORGE_CHECK(n <= kMaxHeader, path, ": header length ", n, " is larger than the 100 MiB limit");
  FORGE_CHECK(n <= size - 8, path, ": truncated: header says ", n, " bytes but the file has ", size - 8,
              " after the length");
  const uint64_t data_size = size - 8 - n;
  data_ = base + 8 + n;
  json h;
  try {
    h = json::parse(base + 8, base + 8 + n);
  } catch (const std::exception& e) {
    throw Error(path + ": header is not valid JSON (" + e.what() + ")");
  }
  FORGE_CHECK(h.is_object(), path, ": header must be a JSON object");

  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto& [name, v] : h.items()) {
    if (name == "__metadata__") {
      FORGE_CHECK(v.is_object(), path, ": __metadata__ must be an object of strings");
      for (auto& [k, s] : v.items()) {
        FORGE_CHECK(s.is_string(), path, ": __metadata__['", k, "'] must be a string");
        metadata_[k] = s.get<std::string>();
      }
      continue;
    }
    const std::string where = path + ": tensor '" + name + "'";
    FORGE_CHECK(v.is_object() && v.contains("dtype") && v.contains("shape") && v.contains("data_offsets"), where,
                ": needs dtype, shape and data_offsets");
    FORGE_CHECK(v["dtype"].is_string(), where, ": dtype must be a string");
    SafetensorsEntry e;
    e.dtype = parse_dtype(v["dtype"].get<std::string>(), where);
    FORGE_CHECK(v["shape"].is_array(), where, ": shape must be an array");
    uint64_t numel = 1;
    for (auto& d : v["shape"]) {
      FORGE_CHECK(d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0), where,
                  ": shape entries must be non-negative integers");
      uint64_t k = d.get<uint64_t>();
      FORGE_CHECK(k == 0 || numel <= (uint64_t(1) << 62) / k, where, ": shape is too large");
      numel *= k;
      e.shape.push_back(int64_t(k));
    }
    auto& off = v["data_offsets"];
    FORGE_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(),
                where, ": data_offsets must be two non-negative integers");
    uint64_t b = off[0].get<uint64_t>(), en = off[1].get<uint64_t>();
    FORGE_CHECK(b <= en && en <= data_size, where, ": data_offsets [", b, ", ", en,
                "] fall outside the data section of ", data_size, " bytes (truncated file?)");
    FORGE_CHECK(en - b == numel * dtype_size(e.dtype), where, ": ", en - b, " bytes of data for shape ",
                shape_str(e.shape), " of ", dtype_tag(e.dtype), " (expected ", numel * dtype_size(e.dtype), ")");
    e.begin = size_t(b);
    e.end = size_t(en);
    ranges.emplace_back(b, en);
    entries_.emplace(name, std::move(e));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    FORGE_CHECK(ranges[i].first >= ranges[i - 1].second, path, ": tensors overlap in the data section");
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  for (auto& kv : entries_) out.push_back(kv.first);
  return out;
}

const SafetensorsEntry& SafetensorsFile::entry(const std::string& name) const {
  auto it = entries_.find(name);
  FORGE_CHECK(it != entries_.end(), path_, ": no tensor named '", name, "'");
  return it->second;
}

Tensor SafetensorsFile::tensor(const std::string& name) const {
  const SafetensorsEntry& e = entry(name);
  const char* p = data_ + e.begin;
  const size_t nbytes = e.end - e.begin;
  if (reinterpret_cast<uintptr_t>(p) % dtype_size(e.dtype) != 0 || nbytes == 0) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    if (nbytes) std::memcpy(t.raw_data(), p, nbytes);
    return t;
  }
  std::shared_ptr<Storage> storage = live_[name].lock();
  if (!storage) {
    // Drops the pages only this tensor's bytes cover; MAP_PRIVATE keeps the file itself intact.
    auto release = [map = map_, p, nbytes](void*) {
      const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
      const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
      const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + nbytes) / page * page;
      if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
    };
    storage = Storage::wrap(const_cast<char*>(p), nbytes, Device::cpu(),
                            std::shared_ptr<void>(const_cast<char*>(p), release));
    live_[name] = storage;
  }
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = storage;
  impl->shape = e.shape;
  impl->strides = contiguous_strides(e.shape);
  impl->dtype = e.dtype;
  return Tensor(impl);
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, Tensor>> sorted;
  for (auto& [name, t] : tensors) sorted.emplace_back(name, t.to(Device::cpu()).contiguous());
  std::sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.first < b.first; });
  for (size_t i = 1; i < sorted.size(); ++i)
    FORGE_CHECK(sorted[i].first != sorted[i - 1].first, path, ": tensor '", sorted[i].first, "' given twice");

  json h = json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t off = 0;
  for (auto& [name, t] : sorted) {
    h[name] = {{"dtype", dtype_tag(t.dtype())}, {"shape", t.shape()}, {"data_offsets", {off, off + t.nbytes()}}};
    off += t.nbytes();
  }
  std::string header = h.dump();
  header.append((8 - header.size() % 8) % 8, ' ');  // data section starts 8-byte aligned

  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    FORGE_CHECK(f, tmp, ": cannot create (", std::strerror(errno), ")");
    uint64_t n = header.size();
    f.write(reinterpret_cast<const char*>(&n), 8);
    f.write(header.data(), std::streamsize(n));
    for (auto& [name, t] : sorted) f.write(static_cast<const char*>(t.raw_data()), std::streamsize(t.nbytes()));
    FORGE_CHECK(f.good(), tmp, ": write failed (disk full?)");
  }
  commit_file(tmp, path);
}

// ---- model directories ------------------------------------------------------------------------

WeightFiles::WeightFiles(const std::string& dir) {
  const std::string index = dir_join(dir, "model.safetensors.index.json");
  if (file_exists(index)) {
    const json j = read_json_file(index);
    FORGE_CHECK(j.contains("weight_map") && j["weight_map"].is_object(), index, ": needs a weight_map object");
    std::map<std::string, size_t> file_ids;
    for (auto& [name, f] : j["weight_map"].items()) {
      FORGE_CHECK(f.is_string(), index, ": weight_map['", name, "'] must be a file name");
      std::string fname = f.get<std::string>();
      FORGE_CHECK(fname.find('/') == std::string::npos, index, ": shard name '", fname, "' must be a plain file name");
      auto it = file_ids.find(fname);
      if (it == file_ids.end()) {
        it = file_ids.emplace(fname, files_.size()).first;
        files_.push_back(std::make_unique<SafetensorsFile>(dir_join(dir, fname)));
      }
      FORGE_CHECK(files_[it->second]->contains(name), index, ": '", name, "' is mapped to ", fname,
                  " but that file has no such tensor");
      where_[name] = it->second;
    }
    return;
  }
  const std::string single = dir_join(dir, "model.safetensors");
  FORGE_CHECK(file_exists(single), dir, ": no model.safetensors or model.safetensors.index.json");
  files_.push_back(std::make_unique<SafetensorsFile>(single));
  for (auto& n : files_[0]->names()) where_[n] = 0;
}

std::vector<std::string> WeightFiles::names() const {
  std::vector<std::string> out;
  for (auto& kv : where_) out.push_back(kv.first);
  return out;
}

const SafetensorsFile& WeightFiles::file_with(const std::string& name) const {
  auto it = where_.find(name);
  FORGE_CHECK(it != where_.end(), "model weights have no tensor named '", name, "'");
  return *files_[it->second];
}

const std::string& WeightFiles::file_of(const std::string& name) const { return file_with(name).path(); }
const SafetensorsEntry& WeightFiles::entry(const std::string& name) const { return file_with(name).entry(name); }
Tensor WeightFiles::tensor(const std::string& name) const { return file_with(name).tensor(name); }

void save_weights(const std::string& dir, const NamedTensors& tensors, size_t max_shard_bytes,
                  const std::map<std::string, std::string>& metadata) {
  std::vector<NamedTensors> shards(1);
  size_t used = 0, total = 0;
  for (auto& nt : tensors) {
    size_t b = nt.second.nbytes();
    if (max_shard_bytes && used > 0 && used + b > max_shard_bytes) {
      shards.emplace_back();
      used = 0;
    }
    shards.back().push_back(nt);
    used += b;
    total += b;
  }
  const std::string index = dir_join(dir, "model.safetensors.index.json");
  if (shards.size() == 1) {
    save_safetensors(dir_join(dir, "model.safetensors"), tensors, metadata);
    if (file_exists(index)) std::remove(index.c_str());  // a stale index would shadow the new file
    return;
  }
  json weight_map = json::object();
  for (size_t i = 0; i < shards.size(); ++i) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
    save_safetensors(dir_join(dir, name), shards[i], metadata);
    for (auto& nt : shards[i]) weight_map[nt.first] = name;
  }
  json j = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  write_file_atomic(index, j.dump(2) + "\n");
}

}  // namespace forge
