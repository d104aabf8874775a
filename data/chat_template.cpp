// apply_chat_template (see chat_template.h). Templates are parsed once per tokenizer.
#include "data/chat_template.h"

#include <map>
#include <mutex>

#include "core/error.h"
#include "core/file_util.h"

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

void override_chat_template(Tokenizer& tok, const std::string& arg) {
  if (arg.empty()) return;
  const bool file = arg.find("{{") == std::string::npos && arg.find("{%") == std::string::npos;
  FORGE_CHECK(!file || file_exists(arg), "--chat-template: no file '", arg,
              "' (give a .jinja file or the template itself)");
  tok.set_chat_template(file ? read_text_file(arg) : arg);
}

std::string continue_final_message(const std::string& rendered, const std::string& content) {
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  size_t b = 0, e = content.size();
  while (b < e && space(content[b])) ++b;
  while (e > b && space(content[e - 1])) --e;
  const std::string core = content.substr(b, e - b);
  const size_t at = core.empty() ? std::string::npos : rendered.rfind(core);
  FORGE_CHECK(at != std::string::npos, "continue_final_message: the chat template does not show the final "
              "message's content, so there is nothing to continue");
  // The content's trailing whitespace, when the template kept it, is part of what is continued.
  const std::string tail = content.substr(e);
  const size_t end = rendered.compare(at + core.size(), tail.size(), tail) == 0 ? at + core.size() + tail.size()
                                                                                : at + core.size();
  return rendered.substr(0, end);
}

}  // namespace forge::data
