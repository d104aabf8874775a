// `forge eval`: greedy answers to held-out prompts scored by exact match against the reference
// answers of a JSONL file (chat rows: the last assistant message; prompt/completion rows: the
// completion). Prompts are rendered as the server renders them.
#include <cstdio>
#include <fstream>

#include "cli/commands.h"
#include "core/error.h"
#include "core/progress.h"
#include "data/chat_template.h"
#include "infer/generate.h"
#include "models/pretrained.h"
#include "peft/adapter_io.h"

namespace forge::cli {
namespace {
std::string strip(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}
}  // namespace

int cmd_eval(const Args& args) {
  check_flags(args, {"--model=", "--data=", "--adapter=", "--max-tokens=", "--show=", "--device="});
  if (has_flag(args, "--help")) {
    std::printf(
        "usage: forge eval --model DIR --data FILE.jsonl [--adapter DIR] [--max-tokens N] [--show N]\n"
        "                  [--device auto|cpu|cuda|cuda:N]\n\n"
        "Generates a greedy answer for every row and prints the exact-match accuracy (answers compared\n"
        "after trimming whitespace). Chat rows ({\"messages\": [...]}) are prompted with all messages but\n"
        "the last, which must be the assistant's reference answer; prompt/completion rows with the\n"
        "prompt. --adapter applies a PEFT LoRA adapter without merging. --show prints N examples.\n"
        "--device auto (the default) runs on the GPU when there is one.\n");
    return 0;
  }
  const std::string dir = required_flag(args, "--model", "DIR");
  const std::string path = required_flag(args, "--data", "FILE.jsonl");
  const int64_t max_tokens = int_flag(args, "--max-tokens", 32, 1);
  const int64_t show = int_flag(args, "--show", 3, 0);
  auto model = models::load_model(dir, std::nullopt, device_flag(args));
  auto tok = data::Tokenizer::from_dir(dir);
  const std::string adapter = flag_value(args, "--adapter", "");
  peft::LoraModel lora;
  if (!adapter.empty()) lora = peft::load_adapter(*model, adapter);
  model->train(false);

  struct Row {
    std::vector<int64_t> prompt;
    std::string answer, question;
  };
  std::vector<Row> rows;
  std::ifstream f(path);
  FORGE_CHECK(f, path, ": cannot open");
  std::string line;
  for (int64_t lineno = 1; std::getline(f, line); ++lineno) {
    if (strip(line).empty()) continue;
    const std::string where = path + ":" + std::to_string(lineno) + ": ";
    data::ojson j;
    try {
      j = data::ojson::parse(line);
    } catch (const std::exception&) {
      throw Error(where + "not valid JSON");
    }
    Row r;
    if (j.contains("messages")) {
      data::ojson msgs = j["messages"];
      FORGE_CHECK(msgs.is_array() && msgs.size() >= 2 && msgs.back().value("role", "") == "assistant", where,
                  "the last message must be the assistant's reference answer");
      r.answer = msgs.back().value("content", "");
      msgs.erase(msgs.end() - 1);
      r.question = msgs.back().value("content", "");
      r.prompt = tok->encode(data::apply_chat_template(*tok, msgs, true), false);
    } else if (j.contains("prompt") && j.contains("completion")) {
      r.question = j["prompt"].get<std::string>();
      r.answer = j["completion"].get<std::string>();
      r.prompt = tok->encode(r.question, true);
    } else {
      throw Error(where + "expected a chat row (messages) or a prompt/completion row");
    }
    rows.push_back(std::move(r));
  }
  FORGE_CHECK(!rows.empty(), path, ": no rows");

  infer::GenerateOptions opt;
  opt.max_new_tokens = max_tokens;
  opt.sampling.temperature = 0;
  opt.stop_ids = models::stop_token_ids(dir, model->config());
  if (tok->eos_id() >= 0) opt.stop_ids.push_back(tok->eos_id());
  ProgressBar bar("eval", int64_t(rows.size()), true, "prompt");
  int64_t correct = 0, shown = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    infer::GenerateResult g = infer::generate(*model, rows[i].prompt, opt);
    const std::string got = strip(tok->decode(g.tokens, /*skip_special_tokens=*/true));
    const bool ok = got == strip(rows[i].answer);
    correct += ok;
    if (shown < show) {
      std::fprintf(stderr, "  %s  %s -> %s%s\n", ok ? "ok  " : "miss", rows[i].question.c_str(), got.c_str(),
                   ok ? "" : (" (expected " + strip(rows[i].answer) + ")").c_str());
      ++shown;
    }
    bar.update(int64_t(i) + 1);
  }
  bar.finish();
  std::printf("exact match: %lld/%zu = %.1f%%\n", (long long)correct, rows.size(), 100.0 * double(correct) / double(rows.size()));
  return 0;
}

}  // namespace forge::cli
