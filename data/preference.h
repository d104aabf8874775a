// Preference pairs for DPO, in TRL's formats: {"prompt", "chosen", "rejected"} as text, or
// conversational (prompt a list of messages, chosen / rejected lists holding the assistant reply),
// or with the prompt implicit (chosen and rejected whole conversations sharing all but the last
// message). Each pair becomes two examples, chosen then rejected: the prompt, then the reply, whose
// tokens (and end of turn) alone are targets.
#pragma once
#include <cstdint>
#include <vector>

#include "data/jinja.h"
#include "data/tokenizer.h"

namespace forge::data {

struct PreferenceTokens {
  std::vector<int64_t> ids[2];   // 0: chosen, 1: rejected
  std::vector<uint8_t> mask[2];
};

// True for a row with "chosen" and "rejected" keys.
bool is_preference_row(const ojson& row);

// Throws a message without the location (the caller adds file:line) naming the missing or empty side.
PreferenceTokens tokenize_preference(const ojson& row, const Tokenizer& tok);

}  // namespace forge::data
