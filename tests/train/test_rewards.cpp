// GRPO's verifiable rewards (train/rewards.h): each built-in on completions that should and should
// not earn it, and the outside reward command run for real through sh, with its failures (crash,
// hang, a non-number, NaN, missing lines) named with the program and the prompt.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "core/error.h"
#include "train/rewards.h"

using namespace forge;
using json = nlohmann::json;

namespace {
std::vector<double> score(const json& spec, const std::vector<std::pair<json, std::string>>& rows) {
  auto f = train::make_reward(spec, "recipe.yaml:3");
  std::vector<train::Completion> batch;
  for (auto& [row, text] : rows) batch.push_back({&row, row.value("prompt", std::string("p")), text});
  return f->score(batch);
}

std::string error_of(const json& spec, const std::vector<std::pair<json, std::string>>& rows) {
  try {
    score(spec, rows);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Rewards, AnswersAreReadAfterTheReasoning) {
  EXPECT_EQ(train::answer_of("<think>maybe 3</think>\n 42 \n"), "42");
  EXPECT_EQ(train::answer_of("  7\n"), "7");
  EXPECT_EQ(train::answer_of("<think>a</think>b</think> c"), "c");
}

TEST(Rewards, ExactAndNumberCompareWithTheRowsField) {
  const json row = {{"prompt", "2+2?"}, {"answer", "4"}}, num = {{"prompt", "1e3+234.5?"}, {"answer", 1234.5}};
  EXPECT_EQ(score({{"type", "exact"}, {"field", "answer"}}, {{row, "<think>2+2</think> 4"}, {row, "4."}, {row, " 4\n"}}),
            (std::vector<double>{1, 0, 1}));
  EXPECT_EQ(score({{"type", "number"}, {"field", "answer"}},
                  {{num, "It is 1,234.5"}, {num, "1234.51"}, {num, "about 1234"}, {num, "no idea"}, {num, "<think>1234.5</think>12"}}),
            (std::vector<double>{1, 0, 0, 0, 0}));
  EXPECT_EQ(score({{"type", "number"}, {"field", "answer"}, {"tolerance", 1e-3}}, {{num, "1234.6"}, {num, "1236"}}),
            (std::vector<double>{1, 0}));  // relative to |1234.5|
  EXPECT_NE(error_of({{"type", "exact"}, {"field", "solution"}}, {{row, "4"}}).find("no field 'solution' (prompt: 2+2?)"),
            std::string::npos);
}

TEST(Rewards, RegexJsonSchemaLengthAndThinkFormat) {
  const json row = {{"prompt", "p"}};
  EXPECT_EQ(score({{"type", "regex"}, {"pattern", "^[A-Z][a-z]+\\.$"}}, {{row, "Paris."}, {row, "paris."}, {row, "<think>x</think>Rome."}}),
            (std::vector<double>{1, 0, 1}));
  const json schema = {{"type", "object"}, {"properties", {{"city", {{"type", "string"}}}}}, {"required", {"city"}}};
  EXPECT_EQ(score({{"type", "json_schema"}, {"schema", schema}},
                  {{row, R"({"city": "Oslo"})"}, {row, R"({"town": "Oslo"})"}, {row, R"({"city": 3})"}, {row, "Oslo"},
                   {row, R"({"city": "Oslo"} and more)"}}),
            (std::vector<double>{1, 0, 0, 0, 0}));
  EXPECT_EQ(score({{"type", "length"}, {"max_chars", 10}}, {{row, "short"}, {row, std::string(15, 'x')}}),
            (std::vector<double>{0, -0.5}));
  EXPECT_EQ(score({{"type", "think_format"}},
                  {{row, "<think>step</think>\n42"}, {row, "42"}, {row, "<think>step</think>  "}, {row, "<think>a<think>b</think>4"},
                   {row, "x <think>a</think>4"}}),
            (std::vector<double>{1, 0, 0, 0, 0}));
}

TEST(Rewards, TheCommandReadsJsonLinesAndAnswersNumbers) {
  const json a = {{"prompt", "first"}, {"answer", "yes"}}, b = {{"prompt", "second"}, {"answer", "no"}};
  // Scores each completion by its length, reading the JSON objects it is sent.
  const json spec = {{"type", "command"},
                     {"command", "while IFS= read -r line; do printf '%s\\n' \"$line\" | grep -c completion_marker || true; done"}};
  EXPECT_EQ(score(spec, {{a, "has completion_marker"}, {b, "nothing"}}), (std::vector<double>{1, 0}));
  // The rows' fields reach it: a program that prints 1 where the row's answer is yes.
  const json fields = {{"type", "command"}, {"command", R"(sed -e 's/.*"answer":"yes".*/1/' -e 's/.*"answer":"no".*/0.25/')"}};
  EXPECT_EQ(score(fields, {{a, "x"}, {b, "y"}}), (std::vector<double>{1, 0.25}));
}

// True once process `pid` has ended (no /proc entry, or a zombie awaiting its new parent).
bool gone_within(int pid, double seconds) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  do {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string pid_s, comm, state;
    if (!(stat >> pid_s >> comm >> state) || state == "Z") return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  } while (std::chrono::steady_clock::now() < until);
  return false;
}

TEST(Rewards, ACommandThatFailsIsNamedWithThePrompt) {
  const json row = {{"prompt", "What is 2+2?"}};
  auto err = [&](const std::string& cmd, double timeout = 5) {
    return error_of({{"type", "command"}, {"command", cmd}, {"timeout_s", timeout}}, {{row, "4"}, {row, "5"}});
  };
  EXPECT_NE(err("cat > /dev/null; exit 3").find("reward command 'cat > /dev/null; exit 3' (prompt: What is 2+2?): exited with status 3"),
            std::string::npos);
  EXPECT_NE(err("kill -9 $$").find("killed by signal 9"), std::string::npos);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_NE(err("sleep 30", 0.3).find("no answer within 0.3 s"), std::string::npos);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0) << "the hang was not cut";
  // The timeout ends what the command started too: no `sleep` outlives it, holding our stderr.
  const std::string pid_file = testing::TempDir() + "reward_child.pid";
  EXPECT_NE(err("sleep 30 & echo $! > " + pid_file + "; wait", 0.3).find("no answer within 0.3 s"), std::string::npos);
  std::ifstream in(pid_file);
  int child = 0;
  ASSERT_TRUE(in >> child) << pid_file;
  EXPECT_TRUE(gone_within(child, 2.0)) << "the command's `sleep` (pid " << child << ") outlived its timeout";
  EXPECT_NE(err("echo 1; echo abc").find("line 2 is not a number: 'abc'"), std::string::npos);
  EXPECT_NE(err("echo 1; echo nan").find("line 2 is nan (rewards must be finite)"), std::string::npos);
  EXPECT_NE(err("echo 1").find("printed 1 lines for 2 completions"), std::string::npos);
}

TEST(Rewards, BadSpecsAreNamed) {
  const json row = {{"prompt", "p"}};
  EXPECT_NE(error_of({{"type", "exactly"}}, {{row, "x"}}).find("recipe.yaml:3: unknown reward type 'exactly'"), std::string::npos);
  EXPECT_NE(error_of({{"type", "exact"}}, {{row, "x"}}).find("reward exact needs a string 'field'"), std::string::npos);
  EXPECT_NE(error_of({{"type", "exact"}, {"field", "a"}, {"weigth", 2}}, {{row, "x"}}).find("unknown key 'weigth'"),
            std::string::npos);
  EXPECT_NE(error_of({{"type", "length"}}, {{row, "x"}}).find("needs 'max_chars' >= 1"), std::string::npos);
}
}  // namespace
