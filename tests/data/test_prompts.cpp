// GRPO's prompt rows (data/prompts.h): chat prompts render with the generation prompt and tokenise
// as a chat request does, text prompts as a completion request, extra fields stay for the rewards,
// long prompts keep their end, and bad rows name their line.
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "data/chat_template.h"
#include "data/prompts.h"
#include "tests/support/test_util.h"

using namespace forge;

namespace {
struct Prompts : ::testing::Test {
  std::string dir;
  std::shared_ptr<data::Tokenizer> tok;
  void SetUp() override {
    dir = forge::testing::fresh_temp_dir("prompts");
    forge::testing::make_tiny_model_dir(dir + "/model");
    tok = data::Tokenizer::from_dir(dir + "/model");
  }
  std::vector<data::Prompt> read(const std::vector<std::string>& lines, data::PromptOptions o = {},
                                 data::PromptStats* st = nullptr) {
    std::ofstream f(dir + "/p.jsonl");
    for (auto& l : lines) f << l << "\n";
    f.close();
    return data::read_prompts(dir + "/p.jsonl", *tok, o, st);
  }
};

TEST_F(Prompts, ChatAndTextPromptsAreWhatTheServerWouldSend) {
  const auto ps = read({R"({"prompt": [{"role": "user", "content": "What is 12 + 30?"}], "answer": "42"})",
                        R"({"prompt": "12 + 30 =", "answer": 42})"});
  ASSERT_EQ(ps.size(), 2u);
  const data::ojson messages = data::ojson::parse(R"([{"role": "user", "content": "What is 12 + 30?"}])");
  const std::string rendered = data::apply_chat_template(*tok, messages, true);
  EXPECT_EQ(ps[0].text, rendered);
  EXPECT_EQ(ps[0].ids, tok->encode(rendered, false));
  EXPECT_NE(rendered.find("What is 12 + 30?"), std::string::npos);
  EXPECT_EQ(ps[0].row.at("answer"), "42");
  EXPECT_EQ(ps[1].ids, tok->encode("12 + 30 =", true));
  EXPECT_EQ(ps[1].row.at("answer"), 42);
}

TEST_F(Prompts, LongPromptsKeepTheirEnd) {
  data::PromptOptions o;
  o.max_prompt_len = 4;
  data::PromptStats st;
  const auto ps = read({R"({"prompt": "a long prompt that ends with the question"})"}, o, &st);
  const std::vector<int64_t> all = tok->encode("a long prompt that ends with the question", true);
  EXPECT_EQ(ps[0].ids, std::vector<int64_t>(all.end() - 4, all.end()));
  EXPECT_EQ(st.truncated, 1);
}

TEST_F(Prompts, BadRowsNameTheirLine) {
  auto error = [&](const std::string& line) {
    try {
      read({R"({"prompt": "ok"})", line});
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error(R"({"question": "x"})").find("p.jsonl:2: missing 'prompt'"), std::string::npos);
  EXPECT_NE(error(R"({"prompt": ""})").find("p.jsonl:2: 'prompt' is empty"), std::string::npos);
  EXPECT_NE(error(R"({"prompt": [{"role": "user"}]})").find("p.jsonl:2: prompt[0] needs a string 'role' and 'content'"),
            std::string::npos);
  EXPECT_NE(error("{not json").find("p.jsonl:2: not valid JSON"), std::string::npos);
  data::PromptOptions skip;
  skip.skip_malformed = true;
  data::PromptStats st;
  EXPECT_EQ(read({R"({"prompt": "ok"})", R"({"x": 1})"}, skip, &st).size(), 1u);
  EXPECT_EQ(st.skipped, 1);
}
}  // namespace
