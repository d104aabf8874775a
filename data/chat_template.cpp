// apply_chat_template (see chat_template.h). Templates are parsed once per tokenizer.
#include "data/chat_template.h"

#include <map>
#include <mutex>

#include "core/error.h"

namespace forge::data {

std::string apply_chat_template(const Tokenizer& tok, const ojson& messages, bool add_generation_prompt,
                                const ojson& extra) {
  FORGE_CHECK(!tok.chat_template().empty(), "the tokenizer has no chat_template in tokenizer_config.json");
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<JinjaTemplate>> cache;
  std::shared_ptr<JinjaTemplate> t;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto& slot = cache[tok.chat_template()];
    if (!slot) slot = std::make_shared<JinjaTemplate>(tok.chat_template(), "chat_template");
    t = slot;
  }
  ojson vars = extra;
  vars["messages"] = messages;
  vars["add_generation_prompt"] = add_generation_prompt;
  for (const char* k : {"bos_token", "eos_token", "unk_token", "pad_token"}) {
    const auto& cfg = tok.config();
    if (!cfg.contains(k) || cfg[k].is_null()) continue;
    if (cfg[k].is_string()) vars[k] = cfg[k].get<std::string>();
    else if (cfg[k].is_object() && cfg[k].contains("content")) vars[k] = cfg[k]["content"].get<std::string>();
  }
  return t->render(vars);
}

}  // namespace forge::data
