// JSON mode's recogniser against a real JSON parser (nlohmann::json): every prefix of a valid
// object is accepted and the whole ends it; random byte mutations are accepted in full exactly
// when the parser takes them; and the token mask lets through exactly the tokens that keep a prefix.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "infer/token_mask.h"
#include "tests/infer/json_match.h"

namespace forge::infer {
namespace {
using json = nlohmann::json;

// Where JSON mode first refuses s (s.size() when it takes all of it).
size_t accepted_bytes(std::string_view s, JsonMatcher* out = nullptr) {
  return json_test::accepted_bytes(JsonMatcher(JsonSchema::any_object()), s, out);
}

bool whole_object(std::string_view s) {
  JsonMatcher m(JsonSchema::any_object());
  return accepted_bytes(s, &m) == s.size() && m.done();
}

// A random JSON value of bounded depth, with numbers, escapes and unicode in strings.
json random_value(std::mt19937& g, int depth) {
  std::uniform_int_distribution<int> kind(0, depth > 0 ? 7 : 5);
  switch (kind(g)) {
    case 0: return nullptr;
    case 1: return bool(g() & 1);
    case 2: return int64_t(g() % 2000) - 1000;
    case 3: return std::ldexp(double(int64_t(g() % 20000) - 10000), int(g() % 40) - 20);
    case 4: {
      std::string s;
      const char* pieces[] = {"a", "\"", "\\", "/", "\n", "\t", "é", "ü", "z", " ", "\x01", "{", "]"};
      for (int i = int(g() % 6); i > 0; --i) s += pieces[g() % 13];
      return s;
    }
    case 5: return "";
    case 6: {
      json a = json::array();
      for (int i = int(g() % 4); i > 0; --i) a.push_back(random_value(g, depth - 1));
      return a;
    }
    default: {
      json o = json::object();
      for (int i = int(g() % 4); i > 0; --i) o["k" + std::to_string(g() % 10)] = random_value(g, depth - 1);
      return o;
    }
  }
}

TEST(JsonMatcherAnyObject, HandWrittenCases) {
  for (const char* ok : {"{}", "{ }", R"({"a":1})", R"({"a": [1, 2.5e-3, -0, true, false, null, "x\u00e9\n"]})",
                         "{\n  \"k\": {\"n\": {}}\n}", R"({"": ""})", R"({"a":-1.5E+10})"})
    EXPECT_TRUE(whole_object(ok)) << ok;
  // The byte where each of these goes wrong.
  const std::pair<const char*, size_t> bad[] = {
      {"[1]", 0},         {"\"x\"", 0},       {"{a:1}", 1},       {"{\"a\" 1}", 5},   {"{\"a\":01}", 6},
      {"{\"a\":1,}", 7},  {"{\"a\":tru}", 8}, {"{\"a\":\"\x01\"}", 6}, {"{\"a\":\"\\x\"}", 7},
      {"{\"a\":1}}", 7},  {"{\"a\":1.}", 7},  {"{\"a\":-}", 6},   {"{\"a\":[1 2]}", 8}, {"{} ", 2},
      {"{\"a\":\"\\u12g4\"}", 10}};
  for (auto& [s, at] : bad) EXPECT_EQ(accepted_bytes(s), at) << s;
  // Strings hold UTF-8: a lead byte needs its continuation bytes, and a stray one is refused.
  EXPECT_TRUE(whole_object("{\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\":0}"));
  EXPECT_EQ(accepted_bytes("{\"\xc3\"}"), 3u);
  EXPECT_EQ(accepted_bytes("{\"\xa9\"}"), 2u);
  EXPECT_EQ(accepted_bytes("{\"\xc0\xaf\"}"), 2u);  // overlong
  // Whitespace between tokens: one space, or a line break and up to 32 bytes of indentation.
  EXPECT_TRUE(whole_object("{\"a\": 1, \"b\": [1, 2]}"));
  EXPECT_TRUE(whole_object("{\r\n\t\"a\": [\n    1,\n    2 \n  ]\n}"));
  EXPECT_TRUE(whole_object("{\n" + std::string(32, ' ') + "\"a\": 1}"));
  EXPECT_EQ(accepted_bytes("{\n" + std::string(40, ' ') + "\"a\": 1}"), 34u);
  EXPECT_EQ(accepted_bytes("{\"a\":  1}"), 6u);
  EXPECT_EQ(accepted_bytes("{\n  \n}"), 4u);
  EXPECT_EQ(accepted_bytes("{\"a\":\r\r1}"), 6u);
  EXPECT_EQ(accepted_bytes("{\"a\":\r 1}"), 6u);
  EXPECT_TRUE(whole_object("\n\n \n{}"));  // before the document, line breaks are the model's own
}

// Every run of whitespace between tokens of s is one the matcher writes: at most one space or tab,
// then at most one line break ("\n" or "\r\n") and up to 32 bytes of indentation after it. (Runs before
// the document may be anything up to 32 bytes.)
bool fits_whitespace_rule(const std::string& s) {
  bool in_string = false, escape = false, started = false;
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (in_string) {
      if (escape) escape = false;
      else if (c == '\\') escape = true;
      else if (c == '"') in_string = false;
      ++i;
      continue;
    }
    if (!is_json_space(static_cast<unsigned char>(c))) {
      in_string = c == '"';
      started = true;
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && is_json_space(static_cast<unsigned char>(s[j]))) ++j;
    const std::string run = s.substr(i, j - i);
    i = j;
    if (!started) {
      if (run.size() > 32) return false;
      continue;
    }
    size_t k = 0;
    if (k < run.size() && (run[k] == ' ' || run[k] == '\t')) ++k;
    if (k + 1 < run.size() && run[k] == '\r' && run[k + 1] == '\n') ++k;  // "\r" only right before "\n"
    const bool broke = k < run.size() && run[k] == '\n';
    k += broke;
    size_t indent = 0;
    while (k < run.size() && (run[k] == ' ' || run[k] == '\t')) ++k, ++indent;
    if (k != run.size() || (!broke && indent > 0) || indent > 32) return false;
  }
  return true;
}

// Found by tests/fuzz/fuzz_json_schema: what the matcher completes must parse (nlohmann refuses lone
// surrogates and numbers beyond a double), so surrogates come paired and numbers stay below 1e199.
TEST(JsonMatcherAnyObject, SurrogatesComePairedAndNumbersStayFinite) {
  EXPECT_TRUE(whole_object(R"({"a": "\ud83d\ude00"})"));
  EXPECT_TRUE(whole_object(R"({"a": "\ud03d"})"));  // not a surrogate: a Hangul syllable
  EXPECT_EQ(accepted_bytes(R"({"a": "\ude00"})"), 10u);    // a low half alone: refused at its 2nd digit
  EXPECT_EQ(accepted_bytes(R"({"a": "\ud83dx"})"), 13u);   // a high half must be followed by \u
  EXPECT_EQ(accepted_bytes(R"({"a": "\ud83d\n"})"), 14u);
  EXPECT_EQ(accepted_bytes(R"({"a": "\ud83d\u0041"})"), 16u);  // ... by a low half
  EXPECT_TRUE(whole_object(R"({"a": 25554e99})"));
  EXPECT_EQ(accepted_bytes(R"({"a": 25554e400})"), 14u);
  EXPECT_TRUE(whole_object("{\"a\": " + std::string(100, '7') + "}"));
  EXPECT_EQ(accepted_bytes("{\"a\": " + std::string(101, '7') + "}"), 106u);
  for (const std::string doc : {R"({"a": 1e400})", R"({"a": "\udc00"})", R"({"a": "\ud800"})"})
    EXPECT_FALSE(whole_object(doc)) << doc;
}

TEST(JsonMatcherAnyObject, AgreesWithAJsonParser) {
  std::mt19937 g(11);
  int parsed = 0, refused = 0;
  for (int i = 0; i < 3000; ++i) {
    json o = json::object();
    for (int k = int(g() % 4); k > 0; --k) o["f" + std::to_string(k)] = random_value(g, 3);
    const std::string s = o.dump(g() % 2 ? -1 : 2);
    ASSERT_TRUE(whole_object(s)) << s;
    for (size_t n = 0; n < s.size(); ++n) {  // no proper prefix is refused or complete
      JsonMatcher m(JsonSchema::any_object());
      ASSERT_EQ(accepted_bytes(s.substr(0, n), &m), n) << s.substr(0, n);
      ASSERT_FALSE(m.done()) << s.substr(0, n);
    }
    // One byte changed, dropped or added: the matcher takes it whole iff the parser does.
    std::string t = s;
    const size_t at = g() % t.size();
    const char alphabet[] = "{}[]:,\"\\ 0123456789.eE+-tfnlrusa\x01\n";
    const char c = alphabet[g() % (sizeof(alphabet) - 1)];
    switch (g() % 3) {
      case 0: t[at] = c; break;
      case 1: t.erase(at, 1); break;
      default: t.insert(at, 1, c);
    }
    bool parser_ok = false;
    try {
      parser_ok = json::parse(t).is_object() && t.back() == '}';  // nothing after the close
    } catch (const json::parse_error&) {
    } catch (const json::out_of_range&) {  // a number beyond double: valid JSON this parser refuses
      continue;
    }
    // (Whitespace the matcher does not write is valid JSON all the same.)
    EXPECT_EQ(whole_object(t), parser_ok && fits_whitespace_rule(t)) << t;
    parsed += parser_ok;
    refused += !parser_ok;
  }
  EXPECT_GT(parsed, 100);
  EXPECT_GT(refused, 1000);
}

TEST(JsonMatcherAnyObject, TokenMaskIsWhatTheMatcherTakes) {
  const std::vector<std::string> texts = {"{", "{\"", "\"", "a", "\":", " 1", "}", "}}", "", ",\"b", "1.", "e5",
                                          "true", "tr", "\n"};
  std::vector<uint8_t> allowed;
  JsonMatcher m(JsonSchema::any_object());
  ASSERT_TRUE(m.feed(std::string_view("{\"x\":")));
  allowed_tokens(m, index_tokens(texts), allowed);
  for (size_t t = 0; t < texts.size(); ++t) {
    JsonMatcher c = m;
    const bool want = !texts[t].empty() && c.feed(texts[t]);
    EXPECT_EQ(allowed[t], want ? 1 : 0) << "token '" << texts[t] << "'";
  }
  EXPECT_EQ(allowed[5], 1);   // " 1"
  EXPECT_EQ(allowed[6], 0);   // "}" : a value is missing
  EXPECT_EQ(allowed[12], 1);  // "true"
  EXPECT_EQ(allowed[8], 0);   // no bytes
}

}  // namespace
}  // namespace forge::infer
