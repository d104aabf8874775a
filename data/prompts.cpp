// GRPO's prompts (see prompts.h).
#include "data/prompts.h"

#include "core/error.h"
#include "data/chat_template.h"
#include "data/dataset.h"

namespace forge::data {
namespace {

Prompt make_prompt(const ojson& row, const Tokenizer& tok) {
  if (!row.is_object()) throw Error("expected a JSON object per line");
  auto it = row.find("prompt");
  if (it == row.end() || it->is_null()) throw Error("missing 'prompt' (a string, or a list of chat messages)");
  Prompt p;
  p.row = row;
  if (it->is_string()) {
    if (it->get<std::string>().empty()) throw Error("'prompt' is empty");
    p.text = it->get<std::string>();
    p.ids = tok.encode(p.text, true);
    return p;
  }
  if (!it->is_array() || it->empty()) throw Error("'prompt' must be a string or a non-empty list of messages");
  for (size_t i = 0; i < it->size(); ++i) {
    const ojson& m = (*it)[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
        !m["content"].is_string())
      throw Error("prompt[" + std::to_string(i) + "] needs a string 'role' and 'content'");
  }
  if (tok.chat_template().empty()) throw Error("chat prompts need a chat template, and the model's tokenizer has none");
  p.text = apply_chat_template(tok, *it, true);
  p.ids = tok.encode(p.text, false);  // the template wrote the special tokens
  return p;
}

}  // namespace

std::vector<Prompt> read_prompts(const std::string& path, const Tokenizer& tok, const PromptOptions& opt,
                                 PromptStats* stats_out) {
  PromptStats st;
  std::vector<Prompt> out;
  for_each_jsonl_row(path, "the prompts", opt.skip_malformed, st, [&](const ojson& row) {
    Prompt p = make_prompt(row, tok);
    if (int64_t(p.ids.size()) > opt.max_prompt_len) {
      p.ids.erase(p.ids.begin(), p.ids.end() - opt.max_prompt_len);
      ++st.truncated;
    }
    out.push_back(std::move(p));
  });
  FORGE_CHECK(!out.empty(), path, ": no usable prompts (", st.lines, " lines, ", st.skipped, " skipped)");
  if (stats_out) *stats_out = st;
  return out;
}

}  // namespace forge::data
