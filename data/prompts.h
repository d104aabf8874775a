// GRPO's prompts: JSONL rows whose `prompt` is text or a list of chat messages, plus any fields a
// reward reads (e.g. `answer`), kept whole. A chat prompt is rendered with the chat template and
// its generation prompt, and tokenised as the server tokenises a chat request, so the rollouts
// see exactly what a deployed model would; a text prompt is encoded with the tokenizer's special
// tokens, as /v1/completions does.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/jinja.h"
#include "data/tokenizer.h"

namespace forge::data {

struct Prompt {
  ojson row;                  // the JSONL object, for the rewards
  std::string text;           // what the model is shown (the rendered template for chat prompts)
  std::vector<int64_t> ids;
};

struct PromptOptions {
  int64_t max_prompt_len = 512;  // longer prompts keep their last tokens (TRL's left truncation)
  bool skip_malformed = false;
};

struct PromptStats : JsonlCounts {
  int64_t truncated = 0;
};

// Errors name the file and line; an empty prompt is an error.
std::vector<Prompt> read_prompts(const std::string& path, const Tokenizer& tok, const PromptOptions& opt,
                                 PromptStats* stats = nullptr);

}  // namespace forge::data
