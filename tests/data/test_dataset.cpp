// Datasets: each JSONL format tokenised with the right loss mask, chat rows masked exactly at
// the chat template's generation prompt, long examples truncated or split into windows, errors
// that name file and line, and the HDF5 cache.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "data/chat_template.h"
#include "data/token_cache.h"
#include "tests/support/test_util.h"

using namespace forge;

namespace {
struct DatasetFixture : ::testing::Test {
  std::string dir;
  std::shared_ptr<data::Tokenizer> tok;
  void SetUp() override {
    dir = forge::testing::fresh_temp_dir("dataset");
    forge::testing::make_tiny_model_dir(dir + "/m");
    tok = data::Tokenizer::from_dir(dir + "/m");
  }
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(dir + "/" + name) << text;
    return dir + "/" + name;
  }
  // The text of the tokens whose mask is m.
  std::string masked_text(const data::ExampleSet& s, int64_t e, uint8_t m) {
    std::vector<int64_t> ids;
    for (int64_t i = s.offsets[e]; i < s.offsets[e + 1]; ++i)
      if (s.mask[i] == m) ids.push_back(s.tokens[i]);
    return tok->decode(ids);
  }
};

TEST_F(DatasetFixture, ChatRowsAreMaskedAtTheGenerationPrompt) {
  const char* row = R"({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"},
    {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Capital of France?"},
    {"role": "assistant", "content": "Paris"}]})";
  data::DatasetStats st;
  data::ExampleSet s = data::read_dataset(write("chat.jsonl", data::ojson::parse(row).dump() + "\n"), *tok, {}, &st);
  EXPECT_EQ(st.format, "chat");
  ASSERT_EQ(s.size(), 1);
  // All tokens together are exactly the rendered conversation, as the server would see it.
  data::ojson msgs = data::ojson::parse(row)["messages"];
  std::vector<int64_t> all(s.tokens.begin(), s.tokens.end());
  EXPECT_EQ(tok->decode(all), data::apply_chat_template(*tok, msgs, false));
  // Targets: each assistant reply with its end-of-turn token, nothing else.
  EXPECT_EQ(masked_text(s, 0, 1), "Hello!<|eot_id|>Paris<|eot_id|>");
  // The prompt of the last turn is what the server sends for the first four messages.
  data::ojson head(data::ojson::value_t::array);
  for (int i = 0; i < 4; ++i) head.push_back(msgs[i]);
  const std::string prompt = data::apply_chat_template(*tok, head, true);
  std::vector<int64_t> prefix(s.tokens.begin(), s.tokens.begin() + int64_t(tok->encode(prompt, false).size()));
  EXPECT_EQ(tok->decode(prefix), prompt);

  data::DatasetOptions all_tokens;
  all_tokens.train_on_prompt = true;
  data::ExampleSet t = data::read_dataset(dir + "/chat.jsonl", *tok, all_tokens);
  EXPECT_EQ(masked_text(t, 0, 0), "");
}

TEST_F(DatasetFixture, AlpacaPromptCompletionAndText) {
  std::string path = write("mixed.jsonl", R"({"instruction": "Add", "input": "2 and 3", "output": "5"})"
                                          "\n");
  data::ExampleSet a = data::read_dataset(path, *tok, {});
  EXPECT_EQ(masked_text(a, 0, 1), "5<|eot_id|>");  // a one-turn chat with the template
  EXPECT_NE(masked_text(a, 0, 0).find("Add\n\n2 and 3"), std::string::npos);

  data::ExampleSet p = data::read_dataset(write("pc.jsonl", R"({"prompt": "2+3=", "completion": " 5"})"
                                                            "\n"),
                                          *tok, {});
  EXPECT_EQ(masked_text(p, 0, 0), "<|begin_of_text|>2+3=");
  EXPECT_EQ(masked_text(p, 0, 1), " 5<|eot_id|>");  // the tokenizer's eos_token

  data::ExampleSet t = data::read_dataset(write("t.jsonl", "{\"text\": \"once upon a time\"}\n\n"), *tok, {});
  EXPECT_EQ(masked_text(t, 0, 1), "<|begin_of_text|>once upon a time<|eot_id|>");

  data::DatasetOptions cut;
  cut.max_seq_len = 8;
  cut.long_examples = "truncate";
  data::DatasetStats st;
  data::ExampleSet c = data::read_dataset(dir + "/t.jsonl", *tok, cut, &st);
  ASSERT_EQ(c.size(), 1);
  EXPECT_EQ(c.length(0), 8);
  EXPECT_EQ(st.truncated, 1);
}

TEST_F(DatasetFixture, LongTextIsSplitIntoWindowsThatKeepEveryTarget) {
  std::string text;
  for (int i = 0; i < 40; ++i) text += "word" + std::to_string(i * 7919 % 101) + " ";
  const std::string path = write("long.jsonl", "{\"text\": \"" + text + "\"}\n{\"text\": \"short one\"}\n");
  data::DatasetOptions whole;
  whole.max_seq_len = 100000;
  const data::ExampleSet full = data::read_dataset(path, *tok, whole);
  ASSERT_EQ(full.size(), 2);
  const int64_t n = full.length(0), L = 16;
  ASSERT_GT(n, 3 * L);

  data::DatasetOptions opt;  // long_examples "auto": raw text is split
  opt.max_seq_len = L;
  data::DatasetStats st;
  const data::ExampleSet w = data::read_dataset(path, *tok, opt, &st);
  EXPECT_EQ(st.split, 1);
  EXPECT_EQ(st.truncated, 0);
  // Windows of L tokens advancing by L - 1 (the last may be shorter), then the short example.
  const int64_t windows = (n - 2) / (L - 1) + 1;
  ASSERT_EQ(w.size(), windows + 1);
  std::vector<int32_t> joined;
  int64_t targets = 0;
  for (int64_t e = 0; e < windows; ++e) {
    EXPECT_LE(w.length(e), L);
    EXPECT_GE(w.length(e), 2);
    if (e + 1 < windows) {
      EXPECT_EQ(w.length(e), L);
    }
    // Each window starts on the previous one's last token; only the first window's is new.
    const int64_t from = w.offsets[e] + (e > 0 ? 1 : 0);
    if (e > 0) {
      EXPECT_EQ(w.tokens[size_t(w.offsets[e])], joined.back());
    }
    joined.insert(joined.end(), w.tokens.begin() + from, w.tokens.begin() + w.offsets[e + 1]);
    for (int64_t t = w.offsets[e] + 1; t < w.offsets[e + 1]; ++t) targets += w.mask[size_t(t)];
  }
  EXPECT_EQ(joined, std::vector<int32_t>(full.tokens.begin(), full.tokens.begin() + n));
  EXPECT_EQ(targets, n - 1);  // every token after the first is predicted exactly once
  EXPECT_EQ(w.length(windows), full.length(1));

  // Chat turns are truncated by default, split on request (windows without a reply are dropped).
  std::string reply;
  for (int i = 0; i < 60; ++i) reply += "answer" + std::to_string(i) + " ";
  const std::string chat = write("long_chat.jsonl", R"({"messages": [{"role": "user", "content": "q"}, )"
                                                    R"({"role": "assistant", "content": ")" + reply + "\"}]}\n");
  data::DatasetStats cs;
  opt.max_seq_len = 48;
  EXPECT_EQ(data::read_dataset(chat, *tok, opt, &cs).size(), 1);
  EXPECT_EQ(cs.truncated, 1);
  opt.long_examples = "split";
  EXPECT_GT(data::read_dataset(chat, *tok, opt, &cs).size(), 2);
  EXPECT_EQ(cs.split, 1);
}

TEST_F(DatasetFixture, MalformedLinesNameFileAndLine) {
  const std::string path = write("bad.jsonl", "{\"text\": \"fine\"}\n{\"text\": 5}\n{not json\n{\"text\": \"ok\"}\n");
  try {
    data::read_dataset(path, *tok, {});
    FAIL() << "a malformed line must stop the read";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:2: 'text' must be a string"), std::string::npos) << e.what();
  }
  data::DatasetOptions skip;
  skip.skip_malformed = true;
  data::DatasetStats st;
  data::ExampleSet s = data::read_dataset(path, *tok, skip, &st);
  EXPECT_EQ(s.size(), 2);
  EXPECT_EQ(st.skipped, 2);
  EXPECT_NE(st.first_error.find("bad.jsonl:2:"), std::string::npos);
  auto error_of = [&](const std::string& line, const char* format) {
    data::DatasetOptions o;
    o.format = format;
    try {
      data::read_dataset(write("one.jsonl", line + "\n"), *tok, o);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error_of(R"({"instruction": "x"})", "alpaca").find("one.jsonl:1: missing 'output'"), std::string::npos);
  EXPECT_NE(error_of(R"({"messages": [{"role": "user", "content": "x"}]})", "chat").find("no assistant message"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"messages": [{"content": "x"}]})", "chat").find("messages[0] needs a string 'role'"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"foo": 1})", "auto").find("cannot tell the format"), std::string::npos);
}

TEST_F(DatasetFixture, TokenCacheIsReusedAndInvalidated) {
  const std::string path = write("c.jsonl", "{\"text\": \"alpha beta\"}\n{\"text\": \"gamma\"}\n");
  const std::string cache = dir + "/cache/train.h5";
  bool hit = true;
  data::ExampleSet a = data::prepare_dataset(path, dir + "/m", *tok, {}, cache, nullptr, &hit);
  EXPECT_FALSE(hit);
  data::ExampleSet b = data::prepare_dataset(path, dir + "/m", *tok, {}, cache, nullptr, &hit);
  EXPECT_TRUE(hit);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.mask, b.mask);
  EXPECT_EQ(a.offsets, b.offsets);
  data::DatasetOptions other;
  other.max_seq_len = 4;  // a setting that changes tokens
  data::prepare_dataset(path, dir + "/m", *tok, other, cache, nullptr, &hit);
  EXPECT_FALSE(hit);
  other.long_examples = "truncate";
  data::prepare_dataset(path, dir + "/m", *tok, other, cache, nullptr, &hit);
  EXPECT_FALSE(hit);
  write("c.jsonl", "{\"text\": \"alpha beta\"}\n{\"text\": \"delta\"}\n");  // the data changes
  data::ExampleSet c = data::prepare_dataset(path, dir + "/m", *tok, {}, cache, nullptr, &hit);
  EXPECT_FALSE(hit);
  EXPECT_NE(c.tokens, a.tokens);
}

}  // namespace
