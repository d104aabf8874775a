// File helpers (see file_util.h).
#include "core/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace forge {

std::string read_text_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  FORGE_CHECK(f, path, ": cannot open (", std::strerror(errno), ")");
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

nlohmann::json read_json_file(const std::string& path) {
  try {
    return nlohmann::json::parse(read_text_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": not valid JSON (" + e.what() + ")");
  }
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

void commit_file(const std::string& tmp, const std::string& path) {
  int fd = ::open(tmp.c_str(), O_RDONLY);
  FORGE_CHECK(fd >= 0, tmp, ": cannot reopen to sync (", std::strerror(errno), ")");
  ::fsync(fd);
  ::close(fd);
  FORGE_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "cannot rename ", tmp, " to ", path, " (",
              std::strerror(errno), ")");
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    FORGE_CHECK(f, tmp, ": cannot create (", std::strerror(errno), ")");
    f.write(bytes.data(), std::streamsize(bytes.size()));
    FORGE_CHECK(f.good(), tmp, ": write failed");
  }
  commit_file(tmp, path);
}

}  // namespace forge
