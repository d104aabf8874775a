// The normal build's regression test of the fuzz harnesses, without libFuzzer:
// `forge_fuzz_replay NAME PATH...` runs harness NAME on every file under the paths. An input
// passes when the harness returns (no crash, no exception other than the reader's forge::Error).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#define FUZZ_ENTRY(name) extern "C" int fuzz_entry_##name(const uint8_t* data, size_t size);
#include "fuzz_entries.inc"
#undef FUZZ_ENTRY

namespace {
using Entry = int (*)(const uint8_t*, size_t);
struct Harness {
  const char* name;
  Entry entry;
};
#define FUZZ_ENTRY(name) {#name, fuzz_entry_##name},
const Harness kHarnesses[] = {
#include "fuzz_entries.inc"
};
#undef FUZZ_ENTRY

void run_file(Entry entry, const std::filesystem::path& p, int& count) {
  std::ifstream in(p, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::fprintf(stderr, "%s\n", p.c_str());  // the last name printed is the input that failed
  entry(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  ++count;
}
}  // namespace

int main(int argc, char** argv) {
  Entry entry = nullptr;
  for (const Harness& h : kHarnesses)
    if (argc > 1 && std::strcmp(argv[1], h.name) == 0) entry = h.entry;
  if (!entry) {
    std::fprintf(stderr, "usage: forge_fuzz_replay NAME PATH...; NAME is one of:");
    for (const Harness& h : kHarnesses) std::fprintf(stderr, " %s", h.name);
    std::fprintf(stderr, "\n");
    return 2;
  }
  int count = 0;
  for (int i = 2; i < argc; ++i) {
    std::vector<std::filesystem::path> files;
    if (std::filesystem::is_directory(argv[i])) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(argv[i]))
        if (e.is_regular_file()) files.push_back(e.path());
      std::sort(files.begin(), files.end());
    } else {
      files.push_back(argv[i]);
    }
    for (const auto& f : files) run_file(entry, f, count);
  }
  std::printf("%s: replayed %d inputs\n", argv[1], count);
  return count > 0 ? 0 : 1;  // an empty corpus is a broken test, not a pass
}
