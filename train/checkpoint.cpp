// Checkpoint files (see checkpoint.h). FORGE_TEST_CRASH_IN_CHECKPOINT=<step> makes the process
// die by SIGKILL halfway through writing that step's checkpoint (crash-safety tests).
#include "train/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace forge::train {
namespace fs = std::filesystem;

namespace {
// A 64-bit checksum of the tensors' names, shapes and bytes, in name order (a multiply-rotate mix
// over 8-byte words: several GB/s, enough to notice corruption; not a defence against tampering).
std::string checksum(const std::map<std::string, Tensor>& tensors) {
  uint64_t h = 0x9E3779B97F4A7C15ull;
  auto mix = [&h](uint64_t w) {
    h ^= w;
    h *= 0xFF51AFD7ED558CCDull;
    h = (h << 31) | (h >> 33);
  };
  auto bytes = [&mix](const char* p, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      mix(w);
    }
    uint64_t tail = 0;
    if (n > i) std::memcpy(&tail, p + i, n - i);
    mix(tail ^ (uint64_t(n) << 56));
  };
  for (const auto& [name, t0] : tensors) {
    bytes(name.data(), name.size());
    for (int64_t d : t0.shape()) mix(uint64_t(d));
    const Tensor t = t0.to(Device::cpu()).contiguous();
    bytes(static_cast<const char*>(t.raw_data()), t.nbytes());
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
  return hex;
}
}  // namespace

std::string checkpoint_path(const std::string& dir, int64_t step) {
  char name[48];
  std::snprintf(name, sizeof name, "/step_%08lld.h5", (long long)step);
  return dir + name;
}

void save_checkpoint(const std::string& dir, int64_t step, const std::map<std::string, Tensor>& tensors,
                     Hdf5Attrs attrs, int64_t keep) {
  fs::create_directories(dir);
  attrs["step"] = std::to_string(step);
  attrs["complete"] = std::string("1");  // (a string, not a char*: GCC 12 warns falsely on the latter)
  attrs["checksum"] = checksum(tensors);
  const std::string path = checkpoint_path(dir, step);
  if (const char* crash = std::getenv("FORGE_TEST_CRASH_IN_CHECKPOINT"); crash && std::atoll(crash) == step) {
    // Simulate a crash mid-write: a torn temp file is left behind, nothing under the real name.
    save_hdf5(path + ".tmp", tensors, attrs);
    fs::resize_file(path + ".tmp", fs::file_size(path + ".tmp") / 2);
    std::fprintf(stderr, "forge: FORGE_TEST_CRASH_IN_CHECKPOINT: killing the process while writing %s\n", path.c_str());
    std::raise(SIGKILL);
  }
  save_hdf5(path, tensors, attrs);
  std::vector<std::string> all = list_checkpoints(dir);
  for (size_t i = size_t(std::max<int64_t>(keep, 1)); i < all.size(); ++i) fs::remove(all[i]);
}

std::vector<std::string> list_checkpoints(const std::string& dir) {
  std::vector<std::string> out;
  if (!fs::is_directory(dir)) return out;
  for (auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("step_", 0) == 0 && name.size() > 8 && name.compare(name.size() - 3, 3, ".h5") == 0)
      out.push_back(e.path().string());
  }
  std::sort(out.rbegin(), out.rend());  // zero-padded step numbers: newest first
  return out;
}

Checkpoint load_checkpoint(const std::string& path) {
  Checkpoint c;
  c.path = path;
  c.attrs = load_hdf5_attrs(path);
  FORGE_CHECK(c.attrs["complete"] == "1" && !c.attrs["step"].empty(), path,
              ": not a complete Forge checkpoint (missing 'complete'/'step' attributes)");
  c.step = std::stoll(c.attrs["step"]);
  c.tensors = load_hdf5(path);
  const std::string want = c.attrs["checksum"];  // absent in checkpoints of older versions
  FORGE_CHECK(want.empty() || checksum(c.tensors) == want, path,
              ": corrupt (its tensors no longer match the checksum written with them)");
  return c;
}

bool load_latest_checkpoint(const std::string& dir, Checkpoint& out, std::vector<std::string>* skipped,
                            int64_t below) {
  for (const std::string& p : list_checkpoints(dir)) {
    const std::string name = std::filesystem::path(p).filename().string();  // step_%08d.h5
    if (std::atoll(name.c_str() + 5) >= below) continue;
    try {
      out = load_checkpoint(p);
      return true;
    } catch (const std::exception& e) {
      if (skipped) skipped->push_back(e.what());
    }
  }
  return false;
}

}  // namespace forge::train
