// Preference rows (see preference.h).
#include "data/preference.h"

#include "core/error.h"
#include "data/dataset.h"

namespace forge::data {
namespace {

const char* kSides[2] = {"chosen", "rejected"};

// A side's reply as a list of messages ending with the assistant's (a single message object is
// accepted as the list of it).
ojson side_messages(const ojson& row, const char* side) {
  ojson v = row.at(side);
  if (v.is_object()) v = ojson::array({v});
  if (!v.is_array() || v.empty()) throw Error(std::string("'") + side + "' must be a string or a non-empty list of messages");
  const ojson& last = v.back();
  if (!last.is_object() || last.value("role", "") != "assistant")
    throw Error(std::string("the last message of '") + side + "' must be the assistant's reply");
  if (!last.contains("content") || !last["content"].is_string() || last["content"].get<std::string>().empty())
    throw Error(std::string("'") + side + "' has an empty reply");
  return v;
}

// Only the last run of targets: the final reply, not earlier assistant turns of the prompt.
void keep_last_reply(std::vector<uint8_t>& mask) {
  size_t end = mask.size();
  while (end > 0 && !mask[end - 1]) --end;
  size_t begin = end;
  while (begin > 0 && mask[begin - 1]) --begin;
  for (size_t i = 0; i < begin; ++i) mask[i] = 0;
}

}  // namespace

bool is_preference_row(const ojson& row) { return row.is_object() && row.contains("chosen") && row.contains("rejected"); }

PreferenceTokens tokenize_preference(const ojson& row, const Tokenizer& tok) {
  if (!row.is_object()) throw Error("expected a JSON object per line");
  for (const char* side : kSides)
    if (!row.contains(side) || row[side].is_null())
      throw Error(std::string("missing '") + side + "' (preference rows need prompt, chosen and rejected)");
  PreferenceTokens out;
  const bool text = row["chosen"].is_string() && row["rejected"].is_string();
  if (text) {  // as prompt_completion rows
    auto it = row.find("prompt");
    if (it == row.end() || !it->is_string())
      throw Error("text preference rows need a string 'prompt' (or give chosen and rejected as messages)");
    for (int s = 0; s < 2; ++s) {
      if (row[kSides[s]].get<std::string>().empty()) throw Error(std::string("'") + kSides[s] + "' is empty");
      tokenize_example(ojson{{"prompt", *it}, {"completion", row[kSides[s]]}}, "prompt_completion", tok, false,
                       out.ids[s], out.mask[s]);
    }
    return out;
  }
  ojson sides[2] = {side_messages(row, "chosen"), side_messages(row, "rejected")};
  ojson prompt;
  if (row.contains("prompt")) {
    prompt = row["prompt"];
    if (prompt.is_string()) prompt = ojson::array({{{"role", "user"}, {"content", prompt}}});
    if (!prompt.is_array() || prompt.empty()) throw Error("'prompt' must be a string or a non-empty list of messages");
  } else {  // implicit: everything before the last message, the same on both sides
    for (int s = 0; s < 2; ++s) {
      ojson p = sides[s];
      p.erase(p.size() - 1);
      if (s == 0) prompt = p;
      else if (p != prompt) throw Error("without 'prompt', chosen and rejected must share every message but the last");
      sides[s] = ojson::array({sides[s].back()});
    }
    if (prompt.empty()) throw Error("no prompt: give 'prompt', or conversations with a user turn before the reply");
  }
  for (int s = 0; s < 2; ++s) {
    ojson messages = prompt;
    for (const ojson& m : sides[s]) messages.push_back(m);
    tokenize_chat(messages, tok, false, out.ids[s], out.mask[s]);
    keep_last_reply(out.mask[s]);
  }
  return out;
}

}  // namespace forge::data
