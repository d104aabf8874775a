// JSONL dataset reading and tokenisation. Chat rows are rendered with the model's chat template
// turn by turn, so the masked prompt is byte for byte what the server sends for the same
// conversation, and each assistant turn keeps the template's end-of-turn token as a target.
#include "data/dataset.h"

#include <algorithm>
#include <fstream>

#include "core/error.h"
#include "data/chat_template.h"

namespace forge::data {

void ExampleSet::add(const std::vector<int64_t>& ids, const std::vector<uint8_t>& m) {
  for (int64_t id : ids) tokens.push_back(int32_t(id));
  mask.insert(mask.end(), m.begin(), m.end());
  offsets.push_back(int64_t(tokens.size()));
}

ExampleSet ExampleSet::subset(const std::vector<int64_t>& indices) const {
  ExampleSet out;
  for (int64_t i : indices) {
    out.tokens.insert(out.tokens.end(), tokens.begin() + offsets[i], tokens.begin() + offsets[i + 1]);
    out.mask.insert(out.mask.end(), mask.begin() + offsets[i], mask.begin() + offsets[i + 1]);
    out.offsets.push_back(int64_t(out.tokens.size()));
  }
  return out;
}

std::string detect_format(const ojson& row) {
  if (!row.is_object()) throw Error("expected a JSON object per line");
  if (row.contains("messages")) return "chat";
  if (row.contains("instruction")) return "alpaca";
  if (row.contains("prompt") && row.contains("completion")) return "prompt_completion";
  if (row.contains("text")) return "text";
  throw Error("cannot tell the format from the keys (expected 'messages', 'instruction', "
              "'prompt' + 'completion' or 'text')");
}

namespace {

const std::string& string_field(const ojson& row, const char* key, const char* format, bool optional = false) {
  static const std::string empty;
  auto it = row.find(key);
  if (it == row.end() || it->is_null()) {
    if (optional) return empty;
    throw Error(std::string("missing '") + key + "' (" + format + " rows need it)");
  }
  if (!it->is_string()) throw Error(std::string("'") + key + "' must be a string");
  return it->get_ref<const std::string&>();
}

void append(const std::vector<int64_t>& src, uint8_t m, std::vector<int64_t>& ids, std::vector<uint8_t>& mask) {
  ids.insert(ids.end(), src.begin(), src.end());
  mask.insert(mask.end(), src.size(), m);
}

// Renders messages[0, i) for each assistant turn i and tokenises the new text piece by piece.
void tokenize_chat(const ojson& messages, const Tokenizer& tok, bool train_on_prompt, std::vector<int64_t>& ids,
                   std::vector<uint8_t>& mask) {
  if (!messages.is_array() || messages.empty()) throw Error("'messages' must be a non-empty list");
  bool any_assistant = false;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ojson& m = messages[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      throw Error("messages[" + std::to_string(i) + "] needs a string 'role'");
    if (!m.contains("content") || !(m["content"].is_string() || m["content"].is_null()))
      throw Error("messages[" + std::to_string(i) + "] needs a string 'content'");
    any_assistant |= m["role"] == "assistant";
  }
  if (!any_assistant) throw Error("no assistant message to learn from");
  if (tok.chat_template().empty())
    throw Error("chat rows need a chat template, and the model's tokenizer_config.json has none");

  std::string done;  // text already tokenised
  auto take = [&](const std::string& text, uint8_t m, const char* what) {
    if (text.compare(0, done.size(), done) != 0)
      throw Error(std::string("the chat template does not render this conversation incrementally (the ") + what +
                  " changes earlier text), so prompt and response tokens cannot be told apart");
    append(tok.encode(std::string_view(text).substr(done.size()), false), m, ids, mask);
    done = text;
  };
  const uint8_t prompt_mask = train_on_prompt ? 1 : 0;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i]["role"] != "assistant") continue;
    ojson before(ojson::value_t::array), upto(ojson::value_t::array);
    for (size_t j = 0; j < i; ++j) before.push_back(messages[j]);
    upto = before;
    upto.push_back(messages[i]);
    take(apply_chat_template(tok, before, true), prompt_mask, "generation prompt");
    take(apply_chat_template(tok, upto, false), 1, "assistant turn");
  }
  take(apply_chat_template(tok, messages, false), prompt_mask, "conversation end");
}

}  // namespace

void tokenize_example(const ojson& row, const std::string& format, const Tokenizer& tok, bool train_on_prompt,
                      std::vector<int64_t>& ids, std::vector<uint8_t>& mask) {
  if (!row.is_object()) throw Error("expected a JSON object per line");
  const uint8_t prompt_mask = train_on_prompt ? 1 : 0;
  const int64_t eos = tok.eos_id();
  if (format == "chat") {
    tokenize_chat(row.contains("messages") ? row["messages"] : ojson(), tok, train_on_prompt, ids, mask);
  } else if (format == "alpaca") {
    const std::string& instruction = string_field(row, "instruction", "alpaca");
    const std::string& input = string_field(row, "input", "alpaca", true);
    const std::string& output = string_field(row, "output", "alpaca");
    if (!tok.chat_template().empty()) {
      // As a one-turn chat, so the finetuned model answers the same request through the chat API.
      ojson messages = ojson::array({{{"role", "user"}, {"content", input.empty() ? instruction : instruction + "\n\n" + input}},
                                     {{"role", "assistant"}, {"content", output}}});
      tokenize_chat(messages, tok, train_on_prompt, ids, mask);
    } else {
      std::string prompt = input.empty()
          ? "Below is an instruction that describes a task. Write a response that appropriately completes the "
            "request.\n\n### Instruction:\n" + instruction + "\n\n### Response:\n"
          : "Below is an instruction that describes a task, paired with an input that provides further context. "
            "Write a response that appropriately completes the request.\n\n### Instruction:\n" + instruction +
            "\n\n### Input:\n" + input + "\n\n### Response:\n";
      append(tok.encode(prompt, true), prompt_mask, ids, mask);
      append(tok.encode(output, false), 1, ids, mask);
      if (eos >= 0) append({eos}, 1, ids, mask);
    }
  } else if (format == "prompt_completion") {
    // As /v1/completions sees it: the prompt with the tokenizer's special tokens, then the completion.
    append(tok.encode(string_field(row, "prompt", "prompt_completion"), true), prompt_mask, ids, mask);
    append(tok.encode(string_field(row, "completion", "prompt_completion"), false), 1, ids, mask);
    if (eos >= 0) append({eos}, 1, ids, mask);
  } else if (format == "text") {
    append(tok.encode(string_field(row, "text", "text"), true), 1, ids, mask);
    if (eos >= 0) append({eos}, 1, ids, mask);
  } else {
    throw Error("unknown dataset format '" + format + "' (expected alpaca, chat, prompt_completion or text)");
  }
}

ExampleSet read_dataset(const std::string& path, const Tokenizer& tok, const DatasetOptions& opt,
                        DatasetStats* stats_out) {
  std::ifstream f(path);
  FORGE_CHECK(f, path, ": cannot open the dataset");
  DatasetStats stats;
  stats.format = opt.format;
  ExampleSet set;
  std::string line;
  std::vector<int64_t> ids;
  std::vector<uint8_t> mask;
  for (int64_t lineno = 1; std::getline(f, line); ++lineno) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    ++stats.lines;
    ids.clear();
    mask.clear();
    try {
      ojson row;
      try {
        row = ojson::parse(line);
      } catch (const ojson::parse_error& e) {
        std::string what = e.what();
        throw Error("not valid JSON (" + what.substr(what.find(']') + 2) + ")");
      }
      if (stats.format == "auto") stats.format = detect_format(row);
      tokenize_example(row, stats.format, tok, opt.train_on_prompt, ids, mask);
    } catch (const Error& e) {
      std::string msg = path + ":" + std::to_string(lineno) + ": " + e.what();
      if (!opt.skip_malformed) throw Error(msg + " (set data.skip_malformed: true to skip such lines)");
      if (stats.skipped++ == 0) stats.first_error = msg;
      continue;
    }
    const int64_t n = int64_t(ids.size()), L = opt.max_seq_len;
    const bool split = opt.long_examples == "split" || (opt.long_examples == "auto" && stats.format == "text");
    if (n > L && !split) {
      ids.resize(size_t(L));
      mask.resize(size_t(L));
      ++stats.truncated;
    }
    if (n > L && split) ++stats.split;
    // Windows [s, s + L) with s advancing by L - 1: a window's first token is the previous one's
    // last, whose target that window already had. One window when the example fits.
    const int64_t len = int64_t(ids.size()), step = std::max<int64_t>(L - 1, 1);
    for (int64_t s = 0; s == 0 || s + 1 < len; s += step) {
      const int64_t e = std::min(s + L, len);
      // The first token is never a target (nothing precedes it), so a window needs a later one.
      bool any = false;
      for (int64_t t = s + 1; t < e; ++t) any |= mask[size_t(t)] != 0;
      if (!any) {
        ++stats.dropped_empty;
        continue;
      }
      set.add({ids.begin() + s, ids.begin() + e}, {mask.begin() + s, mask.begin() + e});
    }
  }
  stats.examples = set.size();
  FORGE_CHECK(set.size() > 0, path, ": no usable examples (", stats.lines, " lines, ", stats.skipped, " skipped, ",
              stats.dropped_empty, " without a response token within max_seq_len)");
  if (stats_out) *stats_out = stats;
  return set;
}

}  // namespace forge::data
