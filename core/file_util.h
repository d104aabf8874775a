// Small file helpers: whole-file reads with clear errors, and atomic writes (tmp, fsync, rename)
// so that a crash never leaves a half-written file under the final name.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace forge {

std::string read_text_file(const std::string& path);  // throws naming the path
// Parses a JSON file; a syntax error names the file.
nlohmann::json read_json_file(const std::string& path);
bool file_exists(const std::string& path);
// fsyncs `tmp` and renames it to `path` (atomic on POSIX file systems).
void commit_file(const std::string& tmp, const std::string& path);
void write_file_atomic(const std::string& path, const std::string& bytes);

}  // namespace forge
