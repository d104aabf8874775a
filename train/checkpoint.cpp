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
  check_hdf5_seal(path);  // a torn or altered file never reaches libhdf5
  c.attrs = load_hdf5_attrs(path);
  const std::string& step = c.attrs["step"];
  FORGE_CHECK(c.attrs["complete"] == "1" && !step.empty() && step.size() < 19 &&
                  step.find_first_not_of("0123456789") == std::string::npos,
              path, ": not a complete Forge checkpoint (missing 'complete'/'step' attributes)");
  c.step = std::stoll(step);
  c.tensors = load_hdf5(path);
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
