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

// vLLM's --chat-template: the text of the file `arg` names, or arg itself when no such file
// exists (a template written inline); "" leaves the tokenizer's.
void override_chat_template(Tokenizer& tok, const std::string& arg);

// transformers' continue_final_message: a rendering without the generation prompt, cut right after
// the final message's content, so that the model continues that message (an assistant reply
// prefilled by the caller). Trailing whitespace of the content stays where the template kept it.
// Throws when the rendering does not show the content.
std::string continue_final_message(const std::string& rendered, const std::string& final_content);

}  // namespace forge::data
