// tokenizer.json: the fuzzed file loaded (normalizer, pre-tokenizer, model, post-processor and
// decoder), then a fixed text with specials and odd bytes encoded, decoded and streamed.
#include <nlohmann/json.hpp>

#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace forge;
  nlohmann::json j = nlohmann::json::parse(fuzz::as_text(data, size), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  fuzz::expect_clean_error([&] {
    data::Tokenizer tok(j, nlohmann::json::object(), "tokenizer.json");
    const std::string text = "Hello  world!\n\t<|begin_of_text|> caf\xc3\xa9 \xf0\x9f\x98\x80 \xff\xfe 12345 <s></s>";
    std::vector<int64_t> ids = tok.encode(text, true);
    (void)tok.decode(ids, false);
    (void)tok.decode(ids, true);
    ids.push_back(tok.vocab_size());  // one past the vocabulary
    ids.push_back(-1);
    (void)tok.decode(ids, false);
    (void)tok.decode_bytes(ids.data(), ids.size(), false);
    for (int64_t id = 0; id < std::min<int64_t>(tok.vocab_size(), 64); ++id) (void)tok.id_to_token(id);
  });
  return 0;
}
