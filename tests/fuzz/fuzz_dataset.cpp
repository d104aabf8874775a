// JSONL datasets in each format (auto, alpaca, chat, prompt_completion, text, preference) and the
// GRPO prompt files: the first byte picks the reader and its options, the rest is the file.
#include <cstdio>

#include "data/dataset.h"
#include "data/prompts.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace forge;
  if (size == 0) return 0;
  static const char* formats[] = {"auto", "alpaca", "chat", "prompt_completion", "text", "preference", "prompts"};
  const std::string format = formats[data[0] % 7];
  const std::string path = fuzz::write_file("data.jsonl", fuzz::as_text(data + 1, size - 1));
  const data::Tokenizer& tok = fuzz::tiny_tokenizer();
  fuzz::expect_clean_error([&] {
    if (format == "prompts") {
      data::PromptOptions opt;
      opt.max_prompt_len = 1 + (data[0] >> 3) % 16;
      opt.skip_malformed = data[0] & 0x80;
      (void)data::read_prompts(path, tok, opt);
      return;
    }
    data::DatasetOptions opt;
    opt.format = format;
    opt.max_seq_len = 2 + (data[0] >> 3) % 32;
    opt.train_on_prompt = data[0] & 0x08;
    opt.skip_malformed = data[0] & 0x80;
    opt.long_examples = data[0] & 0x40 ? "split" : "auto";
    data::ExampleSet set = data::read_dataset(path, tok, opt);
    // Every example fits, with one mask byte per token.
    bool ok = set.tokens.size() == set.mask.size() && set.offsets.back() == int64_t(set.tokens.size());
    for (int64_t i = 0; ok && i < set.size(); ++i) ok = set.length(i) >= 0 && set.length(i) <= opt.max_seq_len;
    if (!ok) {
      std::fprintf(stderr, "read_dataset made an inconsistent set (%zu tokens, %zu mask bytes)\n", set.tokens.size(),
                   set.mask.size());
      __builtin_trap();
    }
  });
  return 0;
}
