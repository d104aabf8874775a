// Finetuning datasets: JSONL files (alpaca, chat messages, prompt/completion, raw text) turned
// into token ids with a per-token loss mask, rendered exactly as the server renders requests.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/jinja.h"
#include "data/tokenizer.h"

namespace forge::data {

// Tokenised examples stored back to back (CSR): example i is tokens[offsets[i], offsets[i+1]).
// mask[t] = 1 when token t is a target of the loss (predicted from the tokens before it).
struct ExampleSet {
  std::vector<int32_t> tokens;
  std::vector<uint8_t> mask;
  std::vector<int64_t> offsets{0};

  int64_t size() const { return int64_t(offsets.size()) - 1; }
  int64_t length(int64_t i) const { return offsets[i + 1] - offsets[i]; }
  int64_t num_tokens() const { return int64_t(tokens.size()); }
  void add(const std::vector<int64_t>& ids, const std::vector<uint8_t>& m);
  ExampleSet subset(const std::vector<int64_t>& indices) const;
};

struct DatasetOptions {
  std::string format = "auto";  // auto | alpaca | chat | prompt_completion | text | preference
                                // (preference: each row gives two examples, chosen then rejected)
  int64_t max_seq_len = 512;    // the longest example kept whole
  bool train_on_prompt = false; // loss on prompt tokens as well
  bool skip_malformed = false;  // count and skip bad lines instead of throwing
  // What becomes of a longer example: "truncate" cuts it at max_seq_len; "split" makes windows of
  // max_seq_len tokens, each starting at the previous one's last token, so every target stays a
  // target exactly once; "auto" splits raw text (format text) and truncates the rest.
  std::string long_examples = "auto";
};

// What a walk over a JSONL file met: its non-blank lines, and those skipped as malformed.
struct JsonlCounts {
  int64_t lines = 0, skipped = 0;
  std::string first_error;      // the first skipped line's message
};

// Calls fn with each non-blank line's JSON value, in order. An Error from the parse or from fn
// becomes "path:line: message": thrown, or with skip_malformed counted in `counts` and skipped.
// `what` names the file's role in the error when it cannot be opened ("the dataset").
void for_each_jsonl_row(const std::string& path, const char* what, bool skip_malformed, JsonlCounts& counts,
                        const std::function<void(const ojson& row)>& fn);

struct DatasetStats : JsonlCounts {
  std::string format;           // the format used (auto resolved)
  int64_t examples = 0, truncated = 0, dropped_empty = 0;
  int64_t split = 0;            // long examples split into windows (each window is one example)
};

// Reads and tokenises a JSONL file. Errors name the file and line ("data.jsonl:17: ...").
ExampleSet read_dataset(const std::string& path, const Tokenizer& tok, const DatasetOptions& opt,
                        DatasetStats* stats = nullptr);

// One example (a parsed JSON object) in the given format; appends ids and mask. Throws a message
// without the location (the caller adds file:line).
void tokenize_example(const ojson& row, const std::string& format, const Tokenizer& tok,
                      bool train_on_prompt, std::vector<int64_t>& ids, std::vector<uint8_t>& mask);

// Chat messages rendered with the tokenizer's chat template; targets: every assistant turn's
// content and end-of-turn tokens (the prompt's too with train_on_prompt).
void tokenize_chat(const ojson& messages, const Tokenizer& tok, bool train_on_prompt, std::vector<int64_t>& ids,
                   std::vector<uint8_t>& mask);

// The format of a JSON row by its keys (messages, instruction, prompt+completion, text).
std::string detect_format(const ojson& row);

}  // namespace forge::data
