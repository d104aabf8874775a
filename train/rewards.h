// Verifiable rewards for GRPO: each function scores a batch of completions of prompt rows (the
// JSONL objects, whose fields such as `answer` the functions may read), and a step's reward is the
// weighted sum. The built-in ones read the answer: the completion after its reasoning (the text
// after the last `</think>`, when there is one), trimmed.
//   exact        the answer equals row[field] (a string, or a number's JSON text), trimmed
//   contains     the answer contains row[field] (trimmed), anywhere
//   number       the answer's last number is within tolerance of row[field] (absolute, or relative
//                to |row[field]| when larger than 1)
//   regex        the answer contains a match of pattern (PCRE2; anchor it with ^...$ for a full match)
//   json_schema  the answer is one JSON document valid for schema (as guided decoding writes them:
//                infer/json_schema.h)
//   length       0 up to max_chars characters of the whole completion, then -(excess / max_chars)
//   think_format the completion is "<think>...</think>" and then a non-empty answer
//   command      an outside program: one JSON object per completion on stdin ({"prompt", "completion",
//                "row"}), one number per line on stdout, within timeout_s; a crash, a timeout, a
//                missing or non-numeric line is an error naming the program and the prompt
// Each returns 1 for yes and 0 for no where the test is yes/no.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace forge::train {

struct Completion {
  const nlohmann::json* row;  // the prompt's JSONL object
  std::string prompt;         // the prompt as text (for the command's input and error messages)
  std::string text;           // what the model wrote
};

class RewardFunction {
 public:
  virtual ~RewardFunction() = default;
  virtual std::vector<double> score(const std::vector<Completion>& batch) = 0;
  std::string name;     // "exact", "command", ... as logged (rewards/<name>)
  double weight = 1.0;
};

// One reward from its recipe entry ({"type": "exact", "field": "answer", "weight": 1, ...});
// errors name `where` and the key.
std::unique_ptr<RewardFunction> make_reward(const nlohmann::json& spec, const std::string& where);

// The answer part of a completion: after the last "</think>" when there is one, trimmed.
std::string answer_of(const std::string& completion);

}  // namespace forge::train
