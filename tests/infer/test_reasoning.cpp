// Reasoning models' <think> replies: the splitter that returns thinking apart from the answer
// (whole or streamed in any pieces), where a chat prompt leaves the reply, and the mask that lets
// guided JSON wait until the thinking is over and still always end in a document it admits.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "core/error.h"
#include "infer/reasoning.h"
#include "tests/infer/json_match.h"

namespace forge::infer {
namespace {
using Phase = ReasoningSplitter::Phase;

struct Split {
  std::string reasoning, content;
  bool operator==(const Split&) const = default;
};

// The reply pushed in the given pieces, then finished.
Split split(Phase from, const std::vector<std::string>& pieces) {
  ReasoningSplitter s(from);
  Split out;
  for (const std::string& p : pieces) s.push(p, out.reasoning, out.content);
  s.finish(out.reasoning, out.content);
  return out;
}

// The same split whole, cut at every byte, and byte by byte.
void expect_split(Phase from, const std::string& reply, const Split& want) {
  EXPECT_EQ(split(from, {reply}), want) << reply;
  for (size_t i = 0; i <= reply.size(); ++i)
    EXPECT_EQ(split(from, {reply.substr(0, i), reply.substr(i)}), want) << reply << " cut at " << i;
  std::vector<std::string> bytes;
  for (char c : reply) bytes.emplace_back(1, c);
  EXPECT_EQ(split(from, bytes), want) << reply << " byte by byte";
}

TEST(ReasoningSplitter, ThinkingIsReturnedApartFromTheAnswer) {
  expect_split(Phase::Start, "<think>\nLet me see.</think>\n\nIt is 4.", {"\nLet me see.", "\n\nIt is 4."});
  expect_split(Phase::Start, "\n <think>a < b</th</think>yes", {"a < b</th", "yes"});  // whitespace before the tag goes
  expect_split(Phase::Start, "<think></think>", {"", ""});
  // A prompt that opened the reasoning (DeepSeek R1): the reply starts inside it.
  expect_split(Phase::Inside, "step 1</think>ok", {"step 1", "ok"});
  expect_split(Phase::Inside, "<think>nested?</think></think>", {"<think>nested?", "</think>"});
}

TEST(ReasoningSplitter, RepliesThatOpenNoReasoningAreContentByteForByte) {
  for (const char* reply : {"Hello <think>x</think>", "<thinking>aloud", "<th", " \n", "</think>no", "{\"a\": 1}"})
    expect_split(Phase::Start, reply, {"", reply});
  // A prompt that closed the reasoning (Qwen 3 with enable_thinking false): all is content.
  expect_split(Phase::Content, "<think>x</think>y", {"", "<think>x</think>y"});
  // Cut short inside reasoning: what was written is reasoning, a partial end tag too.
  expect_split(Phase::Start, "<think>still going</thi", {"still going</thi", ""});
}

TEST(ReasoningSplitter, PromptsSayWhereTheReplyStarts) {
  EXPECT_EQ(ReasoningSplitter::after_prompt("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"), Phase::Start);
  EXPECT_EQ(ReasoningSplitter::after_prompt("<｜User｜>hi<｜Assistant｜><think>\n"), Phase::Inside);
  EXPECT_EQ(ReasoningSplitter::after_prompt("<|im_start|>assistant\n<think>\n\n</think>\n\n"), Phase::Content);
  // An earlier turn's reasoning decides nothing.
  EXPECT_EQ(ReasoningSplitter::after_prompt("<think>a</think>b<|im_end|>\n<|im_start|>assistant\n"), Phase::Start);
}

TEST(ReasoningSplitter, FormatsByNameAndFromChatTemplates) {
  EXPECT_EQ(reasoning_format_named("qwen3"), ReasoningFormat::Think);
  EXPECT_EQ(reasoning_format_named("deepseek_r1"), ReasoningFormat::Think);
  EXPECT_EQ(reasoning_format_named("none"), ReasoningFormat::None);
  EXPECT_THROW(reasoning_format_named("granite"), Error);
  EXPECT_EQ(detect_reasoning_format("{{- '<think>\\n' + reasoning_content + '\\n</think>\\n\\n' }}"),
            ReasoningFormat::Think);
  EXPECT_EQ(detect_reasoning_format("{% for m in messages %}<|im_start|>{{ m.content }}{% endfor %}"),
            ReasoningFormat::None);
}

// A small vocabulary: the tags whole, in pieces and glued to answers, JSON pieces, words, and every
// printable ASCII character.
TokenBytes vocabulary() {
  std::vector<std::string> texts = {"", "<think>", "</think>", "<th", "ink>", "</", "think>", ">", ">{", "\n",
                                    " ", "\n\n", "{", "}", "\"a\"", ":", "1", "23", ",", "hello", "<", "</think> {",
                                    "</think>}", "x</think>{\"a\":", "<think></think>{", "</think>\n\n", ">}"};
  for (char c = ' '; c <= '~'; ++c) texts.push_back(std::string(1, c));
  return index_tokens(texts);
}
int32_t id_of(const TokenBytes& v, const std::string& s) {
  for (size_t t = 0; t < v.texts.size(); ++t)
    if (v.texts[t] == s) return int32_t(t);
  ADD_FAILURE() << "no token " << s;
  return 0;
}

auto schema() {
  return JsonSchema::compile(nlohmann::json::parse(
      R"({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"], "additionalProperties": false})"));
}

TEST(ReasoningMask, GuidedJsonWaitsForTheThinkingToEnd) {
  const TokenBytes v = vocabulary();
  const JsonMatcher m(schema());
  std::vector<uint8_t> ok;
  auto allowed = [&](const ReasoningSplitter& s, const std::string& t) {
    reasoning_allowed(s, m, v, ok);
    return ok[size_t(id_of(v, t))] == 1;
  };
  // At the start: open the reasoning (whole or in pieces), or begin the document.
  const ReasoningSplitter start(Phase::Start);
  for (const char* t : {"<think>", "<th", "<", "{", "\n", "<think></think>{"}) EXPECT_TRUE(allowed(start, t)) << t;
  for (const char* t : {"hello", "}", "</think>", "</think> {", ">{"}) EXPECT_FALSE(allowed(start, t)) << t;
  // Inside: anything, but an end that the document cannot follow.
  const ReasoningSplitter inside(Phase::Inside);
  for (const char* t : {"hello", "}", "<think>", "</think>", "</think> {", "x</think>{\"a\":", ">{", "</think>\n\n"})
    EXPECT_TRUE(allowed(inside, t)) << t;
  EXPECT_FALSE(allowed(inside, "</think>}"));
  // Half an end tag written: ">{" ends it with a document's start, ">}" with what none starts with;
  // "}" does not end it and is reasoning.
  ReasoningSplitter half(Phase::Inside);
  std::string r, c;
  half.push("so</think", r, c);
  EXPECT_TRUE(allowed(half, ">{"));
  EXPECT_FALSE(allowed(half, ">}"));
  EXPECT_TRUE(allowed(half, "}"));
}

// Random walks: every allowed token keeps the answer a prefix of a document, there is never a dead
// end, and every walk that finishes has a reply whose content is a document the schema admits.
TEST(ReasoningMask, RandomWalksAlwaysEndInADocument) {
  const TokenBytes v = vocabulary();
  const auto sch = schema();
  std::mt19937 rng(7);
  int finished = 0, reasoned = 0;
  for (int walk = 0; walk < 60; ++walk) {
    const Phase from = walk % 3 == 0 ? Phase::Start : walk % 3 == 1 ? Phase::Inside : Phase::Content;
    ReasoningSplitter s(from);
    JsonMatcher m(sch);
    std::string reply;
    std::vector<uint8_t> ok;
    for (int step = 0; step < 400 && !m.done(); ++step) {
      if (s.answering()) allowed_tokens(m, v, ok);
      else reasoning_allowed(s, m, v, ok);
      ok[0] = 0;  // the empty token (a special token's bytes) adds nothing to a walk
      std::vector<int32_t> live;
      for (size_t t = 0; t < ok.size(); ++t)
        if (ok[t]) live.push_back(int32_t(t));
      ASSERT_FALSE(live.empty()) << "dead end after " << reply;
      // Favour the tags and the document's own pieces so that walks finish.
      int32_t t = live[rng() % live.size()];
      for (int tries = 0; tries < 3 && v.texts[size_t(t)].size() == 1; ++tries) t = live[rng() % live.size()];
      const std::string& b = v.texts[size_t(t)];
      reply += b;
      std::string thought, answer;
      s.push(b, thought, answer);
      ASSERT_TRUE(m.feed(answer)) << "the mask let through an answer the schema refuses: " << reply;
    }
    if (!m.done()) continue;
    ++finished;
    Split out = split(from, {reply});
    reasoned += from != Phase::Content && !out.reasoning.empty();
    const auto doc = nlohmann::json::parse(out.content, nullptr, false);
    ASSERT_FALSE(doc.is_discarded()) << reply;
    // (An integer past 64 bits parses as a double: it is still written without a fraction.)
    const bool integer = doc["a"].is_number_integer() ||
                         (doc["a"].is_number_float() && out.content.find_first_of(".eE") == std::string::npos);
    EXPECT_TRUE(doc.is_object() && doc.size() == 1 && integer) << reply;
  }
  EXPECT_GE(finished, 40) << "of 60 walks";
  EXPECT_GE(reasoned, 10) << "walks that thought before answering";
}

}  // namespace
}  // namespace forge::infer
