// JSONL dataset reading and tokenisation. Chat rows are rendered with the model's chat template
// turn by turn where the template allows (the masked prompt is then byte for byte what the server
// sends), else as a whole with each assistant turn found in it; either way each assistant turn
// keeps the template's end-of-turn tokens as targets.
#include "data/dataset.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <mutex>

#include "core/error.h"
#include "data/chat_template.h"
#include "data/preference.h"

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
  if (is_preference_row(row)) return "preference";
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

void check_messages(const ojson& messages, const Tokenizer& tok) {
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
}

ojson first(const ojson& messages, size_t n) {
  ojson out(ojson::value_t::array);
  for (size_t j = 0; j < n; ++j) out.push_back(messages[j]);
  return out;
}

// The text from the start of `after` through its first special token (`after` is what follows a
// turn's content): the turn's end as a model emits it (<|im_end|>, <|eot_id|>, <end_of_turn>), and
// nothing the template writes after it, which the model never generates. Empty without one.
std::string turn_end(const Tokenizer& tok, std::string_view after) {
  const std::vector<int64_t> ids = tok.encode(after, false);
  for (size_t k = 0; k < ids.size(); ++k) {
    if (!tok.is_special(ids[k])) continue;
    const std::string text = tok.decode(std::vector<int64_t>(ids.begin(), ids.begin() + long(k) + 1), false, false);
    return after.substr(0, text.size()) == text ? text : "";
  }
  return "";
}

// How a template marks an assistant turn, read off a probe conversation (a question and a reply):
// the header it writes before a reply, after the question's end (its generation prompt:
// "<|start_header_id|>assistant<|end_header_id|>\n\n", "\n<|im_start|>assistant\n"), and how the
// reply ends (turn_end). Cached per template.
struct TurnMarks {
  std::string header, end;
};

const TurnMarks& turn_marks(const Tokenizer& tok) {
  static std::mutex mu;
  static std::map<std::string, TurnMarks> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(tok.chat_template());
  if (it != cache.end()) return it->second;
  const std::string question = "forge-probe-question", reply = "forge-probe-reply";
  const ojson asked = ojson::array({{{"role", "user"}, {"content", question}}});
  ojson answered = asked;
  answered.push_back({{"role", "assistant"}, {"content", reply}});
  const std::string prompted = apply_chat_template(tok, asked, true), whole = apply_chat_template(tok, answered, false);
  const size_t q = prompted.rfind(question), r = whole.rfind(reply);
  TurnMarks m;
  if (q != std::string::npos && r != std::string::npos) {
    const std::string after_q = prompted.substr(q + question.size()), q_end = turn_end(tok, after_q);
    if (!q_end.empty()) m.header = after_q.substr(q_end.size());
    m.end = turn_end(tok, std::string_view(whole).substr(r + reply.size()));
  }
  if (m.header.empty() || m.end.empty())
    throw Error("the chat template marks no reply header or no end-of-turn token, so response tokens cannot be told "
                "from the prompt");
  return cache.emplace(tok.chat_template(), m).first->second;
}

// The prompt and target pieces of a rendering in which `target` starts at `b` and the turn's end
// is the first `end` at or after it; returns where the target stops.
size_t split_turn(const std::string& text, size_t from, size_t b, const std::string& end,
                  std::vector<std::pair<std::string, uint8_t>>& pieces, uint8_t prompt_mask) {
  const size_t e = text.find(end, b);
  if (e == std::string::npos) return e;
  pieces.emplace_back(text.substr(from, b - from), prompt_mask);
  pieces.emplace_back(text.substr(b, e + end.size() - b), 1);
  return e + end.size();
}

// Renders messages[0, i) with the generation prompt and messages[0, i] for each assistant turn i:
// what the prompt adds is prompt, what the turn adds is target through its end-of-turn token. So
// the masked prompt is byte for byte what the server sends for the same conversation. False
// (nothing appended) when a rendering changes text an earlier one made: the template rewrites
// earlier turns once later ones exist (Qwen3 drops the reasoning of turns before the last query).
bool tokenize_incrementally(const ojson& messages, const Tokenizer& tok, uint8_t prompt_mask,
                            std::vector<int64_t>& ids, std::vector<uint8_t>& mask) {
  const TurnMarks& marks = turn_marks(tok);
  std::vector<std::pair<std::string, uint8_t>> pieces;
  std::string done;     // text rendered so far
  size_t cut = 0;       // how much of it is in pieces
  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i]["role"] != "assistant") continue;
    const std::string prompt = apply_chat_template(tok, first(messages, i), true);
    const std::string turn = apply_chat_template(tok, first(messages, i + 1), false);
    if (prompt.compare(0, done.size(), done) != 0 || turn.compare(0, prompt.size(), prompt) != 0) return false;
    cut = split_turn(turn, cut, prompt.size(), marks.end, pieces, prompt_mask);
    if (cut == std::string::npos) return false;
    done = turn;
  }
  const std::string all = apply_chat_template(tok, messages, false);
  if (all.compare(0, done.size(), done) != 0) return false;
  pieces.emplace_back(all.substr(cut), prompt_mask);
  for (auto& [text, m] : pieces) append(tok.encode(text, false), m, ids, mask);
  return true;
}

// The text of a reply that a rendering must show: its content, less a reasoning block the template
// may drop or move (<think>...</think>), without the whitespace templates trim.
std::string shown_text(const ojson& message) {
  std::string c = message["content"].is_string() ? message["content"].get<std::string>() : "";
  if (const size_t e = c.rfind("</think>"); e != std::string::npos) c = c.substr(e + 8);
  const size_t b = c.find_first_not_of(" \t\r\n"), z = c.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : c.substr(b, z - b + 1);
}

// The whole conversation rendered once, as the model sees it in context. Each assistant turn, in
// order, is found after the template's reply header, through its end-of-turn token, and is target;
// everything else is prompt. What an earlier turn looks like is what the template shows for it
// later in the conversation, never a version it would not show.
void tokenize_whole(const ojson& messages, const Tokenizer& tok, uint8_t prompt_mask, std::vector<int64_t>& ids,
                    std::vector<uint8_t>& mask) {
  const TurnMarks& marks = turn_marks(tok);
  const std::string text = apply_chat_template(tok, messages, false);
  std::vector<std::pair<std::string, uint8_t>> pieces;
  size_t cursor = 0;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i]["role"] != "assistant") continue;
    const size_t h = text.find(marks.header, cursor);
    const size_t b = h == std::string::npos ? h : h + marks.header.size();
    const size_t e = b == std::string::npos ? b : split_turn(text, cursor, b, marks.end, pieces, prompt_mask);
    if (e == std::string::npos || text.substr(b, e - b).find(shown_text(messages[i])) == std::string::npos)
      throw Error("messages[" + std::to_string(i) + "]: the chat template's rendering of the conversation does not "
                  "show this assistant turn where expected, so its tokens cannot be found");
    cursor = e;
  }
  pieces.emplace_back(text.substr(cursor), prompt_mask);
  for (auto& [piece, m] : pieces) append(tok.encode(piece, false), m, ids, mask);
}

// Chat rows: incrementally where the template allows it, else from the whole rendering.
}  // namespace

void tokenize_chat(const ojson& messages, const Tokenizer& tok, bool train_on_prompt, std::vector<int64_t>& ids,
                   std::vector<uint8_t>& mask) {
  check_messages(messages, tok);
  const uint8_t prompt_mask = train_on_prompt ? 1 : 0;
  if (!tokenize_incrementally(messages, tok, prompt_mask, ids, mask)) tokenize_whole(messages, tok, prompt_mask, ids, mask);
}

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
    throw Error("unknown dataset format '" + format + "' (expected alpaca, chat, prompt_completion, text or preference)");
  }
}

namespace {
// True when a token after the first is a target (nothing precedes the first).
bool has_target(const std::vector<uint8_t>& mask, size_t begin, size_t end) {
  for (size_t t = begin + 1; t < end; ++t)
    if (mask[t]) return true;
  return false;
}

// A preference pair's two sides, each cut at max_seq_len; the pair is dropped when either side
// keeps no reply token.
void add_pair(PreferenceTokens p, int64_t L, ExampleSet& set, DatasetStats& stats) {
  bool cut = false;
  for (int s = 0; s < 2; ++s)
    if (int64_t(p.ids[s].size()) > L) {
      p.ids[s].resize(size_t(L));
      p.mask[s].resize(size_t(L));
      cut = true;
    }
  stats.truncated += cut;
  if (!has_target(p.mask[0], 0, p.mask[0].size()) || !has_target(p.mask[1], 0, p.mask[1].size())) {
    ++stats.dropped_empty;
    return;
  }
  for (int s = 0; s < 2; ++s) set.add(p.ids[s], p.mask[s]);
}

// One example, truncated or split into windows when longer than max_seq_len (opt.long_examples).
void add_example(std::vector<int64_t>& ids, std::vector<uint8_t>& mask, const DatasetOptions& opt, ExampleSet& set,
                 DatasetStats& stats) {
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
    if (!has_target(mask, size_t(s), size_t(e))) {
      ++stats.dropped_empty;
      continue;
    }
    set.add({ids.begin() + s, ids.begin() + e}, {mask.begin() + s, mask.begin() + e});
  }
}
}  // namespace

void for_each_jsonl_row(const std::string& path, const char* what, bool skip_malformed, JsonlCounts& counts,
                        const std::function<void(const ojson& row)>& fn) {
  std::ifstream f(path);
  FORGE_CHECK(f, path, ": cannot open ", what);
  std::string line;
  for (int64_t lineno = 1; std::getline(f, line); ++lineno) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    ++counts.lines;
    try {
      ojson row;
      try {
        row = ojson::parse(line);
      } catch (const ojson::exception& e) {  // a syntax error, or a number too large for a double
        std::string msg = e.what();
        throw Error("not valid JSON (" + msg.substr(msg.find(']') + 2) + ")");
      }
      try {
        fn(row);
      } catch (const ojson::exception& e) {  // a field of the wrong type the format's reader missed
        throw Error(std::string("unexpected structure (") + e.what() + ")");
      }
    } catch (const Error& e) {
      std::string msg = path + ":" + std::to_string(lineno) + ": " + e.what();
      if (!skip_malformed) throw Error(msg + " (set data.skip_malformed: true to skip such lines)");
      if (counts.skipped++ == 0) counts.first_error = msg;
    }
  }
}

ExampleSet read_dataset(const std::string& path, const Tokenizer& tok, const DatasetOptions& opt,
                        DatasetStats* stats_out) {
  DatasetStats stats;
  stats.format = opt.format;
  ExampleSet set;
  std::vector<int64_t> ids;
  std::vector<uint8_t> mask;
  for_each_jsonl_row(path, "the dataset", opt.skip_malformed, stats, [&](const ojson& row) {
    if (stats.format == "auto") stats.format = detect_format(row);
    if (stats.format == "preference") return add_pair(tokenize_preference(row, tok), opt.max_seq_len, set, stats);
    ids.clear();
    mask.clear();
    tokenize_example(row, stats.format, tok, opt.train_on_prompt, ids, mask);
    add_example(ids, mask, opt, set, stats);
  });
  stats.examples = set.size();
  FORGE_CHECK(set.size() > 0, path, ": no usable examples (", stats.lines, " lines, ", stats.skipped, " skipped, ",
              stats.dropped_empty, " without a response token within max_seq_len)");
  if (stats_out) *stats_out = stats;
  return set;
}

}  // namespace forge::data
