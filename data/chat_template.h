// Rendering a model's chat template as transformers' apply_chat_template(tokenize=False) does.
#pragma once
#include <string>

#include "data/jinja.h"
#include "data/tokenizer.h"

namespace forge::data {

// messages: [{"role": ..., "content": ...}, ...]. Extra variables (tools, documents, ...) go in
// `extra`. bos_token / eos_token / unk_token / pad_token come from tokenizer_config.json.
std::string apply_chat_template(const Tokenizer& tok, const ojson& messages, bool add_generation_prompt,
                                const ojson& extra = ojson::object());

}  // namespace forge::data
