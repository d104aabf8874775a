// tool_choice "auto": the guide that holds a call the model opens in free text (Hermes tags and
// Llama 3's bare JSON), and the parser that reads calls back out of a reply, whole or streamed.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "infer/openai_api.h"
#include "infer/tool_calls.h"
#include "infer/tool_guide.h"
#include "infer/tool_parser.h"
#include "tests/infer/json_match.h"

namespace forge::infer {
namespace {
using json = nlohmann::json;

const char* kTools = R"({"tools": [
  {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
     "properties": {"city": {"type": "string", "maxLength": 12}, "unit": {"enum": ["c", "f"]}},
     "required": ["city", "unit"], "additionalProperties": false}}},
  {"type": "function", "function": {"name": "now"}}]})";

// The tag a server with `format` gives a request carrying kTools (plus `extra` fields).
std::shared_ptr<const ToolTag> tag_for(ToolFormat format, const json& extra = json::object()) {
  json body = json::parse(kTools);
  body.update(extra);
  Request q;
  const ToolChoice t = parse_tools(body, nlohmann::ordered_json::parse(body.dump()), q, format);
  EXPECT_EQ(t.mode, ToolChoice::Auto);
  return q.tool_tag;
}

// A small vocabulary: words, the tags whole and in pieces, JSON pieces and every printable ASCII
// character (so any prefix the guide allows can be finished).
TokenBytes vocabulary() {
  std::vector<std::string> texts = {"", "Hello", " world", ".", "<tool_call>", "</tool_call>", "</", "tool_", "call>", "<", "\n",
                       " ", "\n\n", "{", "{\"", "}", "}}", "}\n", "\"", "\":", "\": ", ", ", ",", "name", "get_weather",
                       "now", "arguments", "parameters", "city", "unit", "Paris", "Oslo", "c", "f", "\"c\"", "x",
                       "\"}", "\"}}", "{}", "{x", "\\n", "é", "12", ":", ": "};
  for (char c = ' '; c <= '~'; ++c) texts.push_back(std::string(1, c));
  return index_tokens(texts);
}

// Whether token t's bytes keep g well formed: still inside a call, or the call written.
bool keeps_call(const ToolGuide& g, const TokenBytes& v, int32_t t) {
  ToolGuide copy = g;
  copy.feed(v.texts[size_t(t)]);
  return copy.constrained() || copy.calls() > g.calls();
}

TEST(ToolGuide, TextIsFreeUntilACallOpensThenTheCallIsHeldToItsSchema) {
  const TokenBytes v = vocabulary();
  const auto tag = tag_for(ToolFormat::Hermes);
  std::mt19937 rng(5);
  for (int walk = 0; walk < 40; ++walk) {
    ToolGuide g(tag);
    std::string text = "Hello world.\n";
    g.feed(text);
    EXPECT_FALSE(g.constrained());
    text += "<tool_call>";
    g.feed("<tool_call>");
    ASSERT_TRUE(g.constrained());
    // Draw among the allowed tokens until the call is written: every allowed token keeps the call
    // well formed, and there is always one.
    std::vector<uint8_t> ok;
    for (int step = 0; g.constrained(); ++step) {
      ASSERT_LT(step, 200) << text;
      g.allowed(v, ok);
      std::vector<int32_t> choices;
      for (int32_t t = 0; t < int32_t(ok.size()); ++t)
        if (ok[size_t(t)]) {
          EXPECT_TRUE(keeps_call(g, v, t)) << "token '" << v.texts[size_t(t)] << "' after " << text;
          choices.push_back(t);
        }
      ASSERT_FALSE(choices.empty()) << "dead end after " << json(text).dump();
      const int32_t t = choices[rng() % choices.size()];
      text += v.texts[size_t(t)];
      g.feed(v.texts[size_t(t)]);
    }
    EXPECT_EQ(g.calls(), 1);
    EXPECT_FALSE(g.closed());  // parallel calls: text is free again
    // The parser reads the call back: a given function, and arguments its parameters admit.
    ToolCallParser p(ToolFormat::Hermes, {"get_weather", "now"});
    std::string content;
    std::vector<ParsedCall> calls;
    p.push(text, content, calls);
    p.finish(content, calls);
    ASSERT_EQ(calls.size(), 1u) << text;
    EXPECT_EQ(content, "Hello world.");
    const json args = json::parse(calls[0].arguments);
    if (calls[0].name == "now") {
      EXPECT_EQ(args, json::object()) << text;
    } else {
      ASSERT_EQ(calls[0].name, "get_weather");
      ASSERT_TRUE(args["city"].is_string()) << text;
      const std::string city = args["city"];
      const auto chars = std::count_if(city.begin(), city.end(), [](char c) { return (c & 0xC0) != 0x80; });
      EXPECT_LE(chars, 12) << text;  // maxLength counts characters
      EXPECT_TRUE(args["unit"] == "c" || args["unit"] == "f") << text;
      EXPECT_EQ(args.size(), 2u) << text;
    }
  }
}

TEST(ToolGuide, AfterTheDocumentOnlyWhitespaceAndTheEndTagMayCome) {
  const TokenBytes v = vocabulary();
  ToolGuide g(tag_for(ToolFormat::Hermes));
  auto allowed = [&] {
    std::vector<uint8_t> ok;
    g.allowed(v, ok);
    std::set<std::string> texts;
    for (size_t t = 0; t < ok.size(); ++t)
      if (ok[t]) texts.insert(v.texts[t]);
    return texts;
  };
  // The brace that closes the call may come with what follows it in one token ("}\n"), not with
  // anything else.
  g.feed("<tool_call>\n{\"name\": \"now\", \"arguments\": {}");
  const std::set<std::string> closing = allowed();
  EXPECT_TRUE(closing.count("}") && closing.count("}\n")) << testing::PrintToString(closing);
  EXPECT_FALSE(closing.count("}}")) << "one brace is left to close, not two";
  g.feed("}");
  ASSERT_TRUE(g.constrained());
  EXPECT_EQ(allowed(), (std::set<std::string>{"</tool_call>", "</", "<", "\n", " ", "\n\n"}));
  g.feed("\n</");
  EXPECT_EQ(allowed(), (std::set<std::string>{"tool_", "t"}));
  g.feed("tool_call>");
  EXPECT_FALSE(g.constrained());
  EXPECT_EQ(g.calls(), 1);
}

TEST(ToolGuide, ParallelCallsOffEndsTheReplyAfterOneCall) {
  ToolGuide g(tag_for(ToolFormat::Hermes, {{"parallel_tool_calls", false}}));
  g.feed("<tool_call>{\"name\": \"now\", \"arguments\": {}}</tool_call>");
  EXPECT_TRUE(g.closed());
}

TEST(ToolGuide, Llama3CallsAreABareObjectOpeningTheReply) {
  const auto tag = tag_for(ToolFormat::Llama3Json);
  ToolGuide g(tag);
  g.feed("\n ");
  g.feed("{\"");  // the trigger and the document's next byte in one token
  EXPECT_TRUE(g.constrained());
  g.feed("name\": \"now\", \"parameters\": {}}");
  EXPECT_TRUE(g.closed());  // one call per turn, as its template shows
  ToolGuide words(tag);
  words.feed("Sure: {");  // a brace inside an answer in words opens nothing
  EXPECT_FALSE(words.constrained());
  ToolGuide broken(tag);
  broken.feed("{x");  // a token that breaks the call as it opens it: the call is given up, text goes on
  EXPECT_FALSE(broken.constrained());
  EXPECT_FALSE(broken.closed());
}

// The calls a reply gives, pushed in the given pieces: held, or live with each call's pieces joined.
std::vector<std::pair<std::string, std::string>> read_calls(ToolFormat f, const std::vector<std::string>& pieces,
                                                          bool live, std::string& content) {
  ToolCallParser p(f, {"get_weather", "now"}, live);
  std::vector<ParsedCall> got;
  for (const std::string& piece : pieces) p.push(piece, content, got);
  p.finish(content, got);
  std::vector<std::pair<std::string, std::string>> calls;
  for (const ParsedCall& c : got) {
    EXPECT_LE(c.index, int64_t(calls.size()));
    if (c.index == int64_t(calls.size())) {
      EXPECT_FALSE(c.name.empty()) << "a call's first piece names it";
      calls.emplace_back(c.name, "");
    } else {
      EXPECT_TRUE(c.name.empty()) << "only the first piece names it";
    }
    calls[size_t(c.index)].second += c.arguments;
  }
  EXPECT_EQ(p.calls(), int64_t(calls.size()));
  return calls;
}

// Whole, streamed in every pair of pieces and byte by byte, held and live: the same content and
// calls (arguments as written).
// (live_too false: a call broken after its name, which live stands as sent; see below.)
void expect_parse(ToolFormat f, const std::string& text, const std::string& content,
                  const std::vector<std::pair<std::string, std::string>>& calls, bool live_too = true) {
  std::vector<std::string> bytes;
  for (char c : text) bytes.emplace_back(1, c);
  for (bool live : {false, true}) {
    if (live && !live_too) continue;
    for (size_t cut = 0; cut <= text.size() + 1; ++cut) {
      std::string got;
      const auto parsed = cut > text.size() ? read_calls(f, bytes, live, got)
                                            : read_calls(f, {text.substr(0, cut), text.substr(cut)}, live, got);
      ASSERT_EQ(got, content) << "split at " << cut << " of " << text << (live ? " (live)" : "");
      ASSERT_EQ(parsed, calls) << "split at " << cut << " of " << text << (live ? " (live)" : "");
    }
  }
}

TEST(ToolCallParser, HermesTagsAmongText) {
  expect_parse(ToolFormat::Hermes,
               "Let me look.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"unit\": \"c\", \"city\": "
               "\"Oslo\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>",
               "Let me look.", {{"get_weather", R"({"unit": "c", "city": "Oslo"})"}, {"now", "{}"}});
  // A reply in words comes out byte for byte, also with a '<' that opens no tag.
  expect_parse(ToolFormat::Hermes, "  a < b and <tool \n\n", "  a < b and <tool \n\n", {});
  // A call that does not parse or names no given function stays content as written.
  expect_parse(ToolFormat::Hermes, "<tool_call>{\"name\": \"now\", </tool_call>",
               "<tool_call>{\"name\": \"now\", </tool_call>", {}, /*live_too=*/false);
  expect_parse(ToolFormat::Hermes, "<tool_call>{\"name\": \"rm\", \"arguments\": {}}</tool_call>",
               "<tool_call>{\"name\": \"rm\", \"arguments\": {}}</tool_call>", {});
  expect_parse(ToolFormat::Hermes, "<tool_call>[1]</tool_call> x", "<tool_call>[1]</tool_call> x", {});
  // A call the reply ends in without its end tag is still a call.
  expect_parse(ToolFormat::Hermes, "<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n", "", {{"now", "{}"}});
  expect_parse(ToolFormat::Hermes, "<tool_call>\n{\"name\": \"no", "<tool_call>\n{\"name\": \"no", {});
  // Text after a call stays, without the whitespace that set it apart.
  expect_parse(ToolFormat::Hermes, "<tool_call>{\"name\": \"now\", \"arguments\": {}}</tool_call>\n\nDone.",
               "Done.", {{"now", "{}"}});
  // The end tag's text inside an argument does not end the call; the name may come last; a call
  // without arguments takes none.
  expect_parse(ToolFormat::Hermes,
               "<tool_call>{\"arguments\": {\"city\": \"</tool_call>\", \"unit\": [1, {\"a\": 2}]}, \"name\": "
               "\"get_weather\"}</tool_call>",
               "", {{"get_weather", R"({"city": "</tool_call>", "unit": [1, {"a": 2}]})"}});
  expect_parse(ToolFormat::Hermes, "<tool_call>{\"name\": \"now\"}</tool_call>", "", {{"now", "{}"}});
}

// Live, a call goes out as it is written: its name first, then its arguments in pieces; one cut
// short stands as sent, where the held reading gives it back as text.
TEST(ToolCallParser, LiveCallsStreamTheirArguments) {
  const std::string reply = "<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}</tool_call>";
  ToolCallParser p(ToolFormat::Hermes, {"get_weather", "now"}, /*live=*/true);
  std::string content;
  std::vector<ParsedCall> pieces;
  for (char c : reply) p.push(std::string(1, c), content, pieces);
  p.finish(content, pieces);
  ASSERT_GT(pieces.size(), 10u);
  EXPECT_EQ(pieces[0].name, "get_weather");
  EXPECT_EQ(pieces[0].arguments, "");  // the name is out before any argument is written
  const std::string cut = "<tool_call>{\"name\": \"now\", \"arguments\": {\"x\": ";
  std::string held;
  EXPECT_TRUE(read_calls(ToolFormat::Hermes, {cut}, false, held).empty());
  EXPECT_EQ(held, cut);
  std::string live;
  const auto stood = read_calls(ToolFormat::Hermes, {cut}, true, live);
  EXPECT_EQ(live, "");
  ASSERT_EQ(stood.size(), 1u);
  EXPECT_EQ(stood[0], std::make_pair(std::string("now"), std::string("{\"x\": ")));
}

TEST(ToolCallParser, Llama3BareJson) {
  expect_parse(ToolFormat::Llama3Json, " {\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\", \"unit\": \"f\"}}",
               "", {{"get_weather", R"({"city": "Paris", "unit": "f"})"}});
  expect_parse(ToolFormat::Llama3Json, "{\"name\": \"now\", \"arguments\": {}}", "", {{"now", "{}"}});
  expect_parse(ToolFormat::Llama3Json, "It is {warm}.", "It is {warm}.", {});
  expect_parse(ToolFormat::Llama3Json, "{not a call}", "{not a call}", {});
}

TEST(ToolCallParser, FormatsFromChatTemplates) {
  EXPECT_EQ(detect_tool_format("{{- '<tool_call>\\n' }}{{ tool_call | tojson }}"), ToolFormat::Hermes);
  EXPECT_EQ(detect_tool_format("{%- elif 'tool_calls' in message %}<|start_header_id|>{{- '\"parameters\": ' }}"),
            ToolFormat::Llama3Json);
  EXPECT_EQ(detect_tool_format("{%- elif 'tool_calls' in message %}[TOOL_CALLS]{{- '\"parameters\": ' }}"),
            ToolFormat::None);  // Mistral's
  EXPECT_EQ(detect_tool_format("{% for m in messages %}<|im_start|>{{ m.content }}{% endfor %}"), ToolFormat::None);
  EXPECT_EQ(tool_format_named("hermes"), ToolFormat::Hermes);
  EXPECT_THROW(tool_format_named("mistral"), Error);
}

TEST(ToolCalls, AutoReadsCallsOutOfTheReplyAndIsRefusedWithoutAFormat) {
  const json body = json::parse(kTools);
  Request q;
  const ToolChoice t = parse_tools(body, nlohmann::ordered_json::parse(kTools), q, ToolFormat::Hermes);
  ASSERT_EQ(t.mode, ToolChoice::Auto);  // the default with tools
  EXPECT_TRUE(json_test::takes_whole(q.tool_tag->schema, R"({"name": "now", "arguments": {}})"));
  EXPECT_FALSE(json_test::takes_whole(q.tool_tag->schema, R"({"name": "now", "parameters": {}})"));
  EXPECT_FALSE(json_test::takes_whole(q.tool_tag->schema, R"({"name": "get_weather", "arguments": {"city": "x"}})"));
  std::string finish = "stop";
  json msg = chat_message(t, "On it.<tool_call>{\"name\": \"now\", \"arguments\": {}}</tool_call>", finish);
  EXPECT_EQ(finish, "tool_calls");
  EXPECT_EQ(msg["content"], "On it.");
  EXPECT_EQ(msg["tool_calls"][0]["function"]["name"], "now");
  finish = "stop";
  msg = chat_message(t, "Just words.", finish);
  EXPECT_EQ(finish, "stop");
  EXPECT_EQ(msg["content"], "Just words.");
  EXPECT_FALSE(msg.contains("tool_calls"));
  Request none;
  try {
    parse_tools(body, nlohmann::ordered_json::parse(kTools), none, ToolFormat::None);
    FAIL() << "auto accepted without a format";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.param, "tool_choice");
    EXPECT_NE(std::string(e.what()).find("--tool-call-parser"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace forge::infer
