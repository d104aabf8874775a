// Guided JSON decoding against Python's jsonschema (tests/reference/json_schema_reference.py):
// documents the oracle drew from each schema are taken whole, its near misses are refused, and
// random documents the matcher writes validate, with no dead end on the way. Plus the compiler's
// refusals, the rules the oracle cannot see (key order, lengths in code points, when a document
// ends) and the token mask against trying every token.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "core/error.h"
#include "infer/json_matcher.h"
#include "infer/token_mask.h"
#include "tests/infer/json_match.h"
#include "tests/support/test_util.h"

namespace forge::infer {
namespace {
using json = nlohmann::json;
using json_test::accepted_bytes;
using json_test::takes_whole;

std::shared_ptr<const JsonSchema> schema(const char* text) { return JsonSchema::compile(json::parse(text)); }

std::string compile_error(const char* text) {
  try {
    schema(text);
  } catch (const Error& e) {
    return e.what();
  }
  return "(compiled)";
}

const json& reference_file() {
  static const json file = [] {
    const char* path = std::getenv("FORGE_JSON_SCHEMA_REFERENCE");
    if (!path) return json();
    std::ifstream in(path);
    return json::parse(in);
  }();
  return file;
}
const json& reference() { return reference_file().is_null() ? reference_file() : reference_file()["cases"]; }
#define REQUIRE_REFERENCE()                                                                          \
  if (reference().is_null()) GTEST_FAIL() << "FORGE_JSON_SCHEMA_REFERENCE is not set (run through ctest)"

TEST(JsonSchemaOracle, DocumentsTheSchemaAdmitsAreTakenWhole) {
  REQUIRE_REFERENCE();
  for (const json& c : reference()) {
    auto s = JsonSchema::compile(c["schema"]);
    for (const json& doc : c["valid"]) {
      const std::string t = doc.get<std::string>();
      JsonMatcher m(s);
      ASSERT_EQ(accepted_bytes(m, t, &m), t.size()) << c["name"] << ": " << t;
      EXPECT_TRUE(m.complete()) << c["name"] << ": " << t;
    }
  }
}

TEST(JsonSchemaOracle, NearMissesAreRefused) {
  REQUIRE_REFERENCE();
  int misses = 0;
  for (const json& c : reference()) {
    auto s = JsonSchema::compile(c["schema"]);
    for (const json& doc : c["invalid"]) {
      EXPECT_FALSE(takes_whole(s, doc.get<std::string>())) << c["name"] << ": " << doc.get<std::string>();
      ++misses;
    }
  }
  EXPECT_GT(misses, 1000);
}

// A random document, one byte at a time among those the matcher takes; closing bytes grow likelier
// as it goes on. Empty when it ran too long. Fails the test at a dead end.
std::string random_document(std::shared_ptr<const JsonSchema> s, std::mt19937& g) {
  JsonMatcher m(s);
  std::string out;
  while (out.size() < 400) {
    std::vector<unsigned char> ok;
    std::vector<double> w;
    for (int c = 0; c < 256; ++c) {
      JsonMatcher t = m;
      if (!t.feed(static_cast<unsigned char>(c))) continue;
      ok.push_back(static_cast<unsigned char>(c));
      const bool closer = c == '"' || c == '}' || c == ']';
      w.push_back(closer ? 1.0 + double(out.size()) / 4 : c == ',' ? 3.0 : c >= 0x80 || c == ' ' ? 0.3 : 1.0);
    }
    EXPECT_EQ(ok.empty(), m.done()) << "after " << out;
    if (ok.empty() || (m.complete() && g() % 3 == 0)) return out;
    const unsigned char c = ok[std::discrete_distribution<size_t>(w.begin(), w.end())(g)];
    m.feed(c);
    out += char(c);
  }
  return "";
}

TEST(JsonSchemaOracle, WhatTheMatcherWritesValidates) {
  REQUIRE_REFERENCE();
  std::mt19937 g(5);
  json out = json::array();
  int written = 0, long_ones = 0;
  for (const json& c : reference()) {
    auto s = JsonSchema::compile(c["schema"]);
    json docs = json::array();
    for (int i = 0; i < 40; ++i) {
      const std::string d = random_document(s, g);
      if (d.empty()) ++long_ones;
      else docs.push_back(d), ++written;
    }
    out.push_back({{"name", c["name"]}, {"schema", c["schema"]}, {"outputs", docs}});
  }
  EXPECT_LT(long_ones, written / 10) << "walks should mostly end";
  const std::string path = testing::fresh_temp_dir("forge_json_schema") + "/outputs.json";
  std::ofstream(path) << json{{"cases", out}}.dump();
  std::string cmd;  // the oracle's own python and script, --check
  for (const json& part : reference_file()["check"]) cmd += "'" + part.get<std::string>() + "' ";
  cmd += path;
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

// Bounds (Pydantic's ge/gt/le/lt): a value outside is refused at the first byte that rules every
// completion out, and one inside is taken whole. Bounded numbers are written without exponent and
// with at most 9 fraction digits.
TEST(JsonSchema, NumberBoundsHoldEveryPrefix) {
  auto s = JsonSchema::compile(json::parse(R"({"type": "integer", "minimum": 1, "maximum": 5})"));
  for (const char* ok : {"1", "3", "5"}) EXPECT_TRUE(json_test::takes_whole(s, ok)) << ok;
  JsonMatcher m(s);
  EXPECT_EQ(json_test::accepted_bytes(m, "0"), 0u);
  EXPECT_EQ(json_test::accepted_bytes(m, "-1"), 0u);
  EXPECT_EQ(json_test::accepted_bytes(m, "10"), 1u);
  EXPECT_EQ(json_test::accepted_bytes(m, "3.0"), 1u);  // an integer has no fraction
  s = JsonSchema::compile(json::parse(R"({"type": "number", "exclusiveMinimum": 0, "maximum": 1})"));
  for (const char* ok : {"0.5", "1", "1.0", "0.000000001", "1.000000000"}) EXPECT_TRUE(json_test::takes_whole(s, ok)) << ok;
  for (const char* bad : {"0", "0.0", "1.5", "2", "1.000000001", "0.5e0", "0.0000000001", "-0.5"})
    EXPECT_FALSE(json_test::takes_whole(s, bad)) << bad;
  s = JsonSchema::compile(json::parse(R"({"type": "array", "items": {"type": "integer", "maximum": -10}})"));
  EXPECT_TRUE(json_test::takes_whole(s, "[-10, -11, -123456789012345678]"));
  m = JsonMatcher(s);
  EXPECT_EQ(json_test::accepted_bytes(m, "[-9]"), 3u);  // -9 could still become -90, but ends here
  EXPECT_EQ(json_test::accepted_bytes(m, "[5"), 1u);
  EXPECT_EQ(json_test::accepted_bytes(m, "[-1234567890123456789]"), 20u);  // past 18 digits
  // multipleOf: only multiples, of an integer step or a decimal one.
  s = JsonSchema::compile(json::parse(R"({"type": "integer", "multipleOf": 5, "minimum": 1})"));
  for (const char* ok : {"5", "10", "1000"}) EXPECT_TRUE(json_test::takes_whole(s, ok)) << ok;
  for (const char* bad : {"0", "3", "12", "-5"}) EXPECT_FALSE(json_test::takes_whole(s, bad)) << bad;
  s = JsonSchema::compile(json::parse(R"({"type": "number", "multipleOf": 0.01, "maximum": 1})"));
  for (const char* ok : {"0.25", "1", "-3.5", "0.990000000"}) EXPECT_TRUE(json_test::takes_whole(s, ok)) << ok;
  for (const char* bad : {"0.255", "1.01", "0.001"}) EXPECT_FALSE(json_test::takes_whole(s, bad)) << bad;
  s = JsonSchema::compile(json::parse(R"({"type": "number", "minimum": 0.1, "maximum": 0.1})"));
  EXPECT_TRUE(json_test::takes_whole(s, "0.1"));  // the double 0.1 stands for the decimal
  EXPECT_TRUE(json_test::takes_whole(s, "0.100"));
  EXPECT_FALSE(json_test::takes_whole(s, "0.11"));
}

TEST(JsonSchema, RefusesWhatItCannotHoldNamingWhere) {
  // (schema, words its error must hold)
  const std::pair<const char*, const char*> refused[] = {
      {R"({"properties": {"a": {"type": "string", "pattern": "^x"}}})", "#/properties/a: 'pattern' is not supported"},
      {R"({"type": "integer", "uniqueItems": true})", "'uniqueItems' is not supported"},
      {R"({"type": "number", "multipleOf": 1e-12})", "billionths"},
      {R"({"type": "integer", "multipleOf": 4, "minimum": 5, "maximum": 7})", "no integer lies within"},
      {R"({"type": "integer", "minimum": 5, "maximum": 4})", "no integer lies within"},
      {R"({"type": "integer", "minimum": 1.2, "maximum": 1.8})", "no integer lies within"},
      {R"({"type": "number", "exclusiveMinimum": 1, "exclusiveMaximum": 1})", "no number"},
      {R"({"type": "string", "minimum": 1})", "need a schema of numbers"},
      {R"({"type": "number", "exclusiveMinimum": true})", "draft-4"},
      {R"({"type": "strin"})", "unknown type 'strin'"},
      {R"({"$ref": "#/$defs/nope"})", "names nothing"},
      {R"({"$ref": "http://x/y"})", "must point into this schema"},
      {R"({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"})", "cycle"},
      {R"({"properties": {"a": {}}, "required": ["b"]})", "required property \"b\""},
      {R"({"type": "string", "minLength": 5, "maxLength": 2})", "'minLength' exceeds"},
      {R"({"type": "string", "enum": [1, 2]})", "no value of 'enum'"},
      {R"({"items": false, "minItems": 1})", "needs more items"},
      {R"({"type": "object", "anyOf": [{}]})", "'type' alongside 'anyOf'"},
      {"false", "admits no value"}};
  for (auto [text, words] : refused) {
    const std::string e = compile_error(text);
    EXPECT_NE(e.find(words), std::string::npos) << text << " gave: " << e;
  }
  std::string deep = "{}";
  for (int i = 0; i < 70; ++i) deep = R"({"items": )" + deep + "}";
  EXPECT_NE(compile_error(deep.c_str()).find("deeper than 64"), std::string::npos);
  // Annotations are no constraint; a recursive schema compiles.
  EXPECT_EQ(compile_error(R"({"title": "T", "description": "d", "format": "date", "x-extra": 1, "$ref": "#/$defs/n",
                              "$defs": {"n": {"type": "array", "items": {"$ref": "#/$defs/n"}}}})"),
            "(compiled)");
}

TEST(JsonSchema, KeysComeInAnyOrderOnceEachAndRequiredOnesBeforeTheClose) {
  auto s = schema(R"({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"},
                      "c": {"type": "boolean"}}, "required": ["a", "b"]})");
  EXPECT_TRUE(takes_whole(s, R"({"b": 1, "a": 2})"));
  EXPECT_TRUE(takes_whole(s, R"({"c": true, "a": 2, "b": -0})"));
  JsonMatcher m(s);
  EXPECT_EQ(accepted_bytes(m, R"({"a": 1, "a": 2})"), 10u);   // a second "a"
  EXPECT_EQ(accepted_bytes(m, R"({"a": 1})"), 7u);            // "b" is required
  EXPECT_EQ(accepted_bytes(m, R"({"a": 1, "d": 2})"), 10u);   // not declared
  EXPECT_EQ(accepted_bytes(m, R"({"a": 1.5, "b": 2})"), 7u);  // an integer
  EXPECT_EQ(accepted_bytes(m, R"({"a":1,"b":2,"c":true,)"), 21u);  // no key is left
}

TEST(JsonSchema, LengthsCountCodePointsAsPythonDoes) {
  auto s = schema(R"({"type": "string", "minLength": 2, "maxLength": 3})");
  EXPECT_TRUE(takes_whole(s, "\"ab\""));
  EXPECT_TRUE(takes_whole(s, "\"\xc3\xa9\xf0\x9f\x98\x80\""));  // two characters, six bytes
  EXPECT_FALSE(takes_whole(s, "\"\\ud83d\\ude00\""));           // one character (a surrogate pair)
  EXPECT_TRUE(takes_whole(s, "\"\\ud83d\\ude00x\""));
  EXPECT_TRUE(takes_whole(s, "\"\\n\\u00e9\""));
  JsonMatcher m(s);
  EXPECT_EQ(accepted_bytes(m, "\"a\""), 2u);
  EXPECT_EQ(accepted_bytes(m, "\"abcd\""), 4u);
}

TEST(JsonSchema, EndsWhenNothingMayFollow) {
  auto num = schema(R"({"type": "integer"})");
  JsonMatcher m(num);
  ASSERT_TRUE(m.feed(std::string_view("12")));
  EXPECT_TRUE(m.complete());
  EXPECT_FALSE(m.done());  // "123" may follow: the engine lets eos end it
  EXPECT_FALSE(JsonMatcher(m).feed(' '));
  EXPECT_FALSE(JsonMatcher(m).feed('.'));
  auto lits = schema(R"({"enum": [1, 12, 123, "x"]})");
  JsonMatcher l(lits);
  ASSERT_TRUE(l.feed(std::string_view("12")));
  EXPECT_TRUE(l.complete());
  EXPECT_FALSE(l.done());
  ASSERT_TRUE(l.feed('3'));
  EXPECT_TRUE(l.done());
  JsonMatcher x(lits);
  ASSERT_TRUE(x.feed(std::string_view("\"x\"")));
  EXPECT_TRUE(x.done());
  JsonMatcher o(JsonSchema::any_object());
  ASSERT_TRUE(o.feed(std::string_view("{\"a\": [1]}")));
  EXPECT_TRUE(o.done());
}

TEST(JsonSchema, AnyOfFollowsEveryReadingThatFits) {
  auto s = schema(R"({"anyOf": [{"type": "object", "properties": {"k": {"const": "a"}, "x": {"type": "integer"}},
                                  "required": ["k", "x"], "additionalProperties": false},
                                 {"type": "object", "properties": {"k": {"const": "a"}, "y": {"type": "string"}},
                                  "required": ["k", "y"], "additionalProperties": false},
                                 {"type": "array", "items": {"$ref": "#"}, "maxItems": 2}]})");
  EXPECT_TRUE(takes_whole(s, R"({"k": "a", "x": 1})"));
  EXPECT_TRUE(takes_whole(s, R"({"k": "a", "y": "b"})"));
  EXPECT_TRUE(takes_whole(s, R"([[{"k":"a","x":2}], []])"));
  EXPECT_FALSE(takes_whole(s, R"({"k": "a", "x": 1, "y": "b"})"));
  EXPECT_FALSE(takes_whole(s, R"([1])"));
  EXPECT_FALSE(takes_whole(s, R"([[], [], []])"));
}

// The mask equals trying every token on a copy of the matcher, in every state along documents
// the oracle drew (strings with length limits and JSON mode's free keys included), over a
// vocabulary of their pieces.
TEST(TokenMask, EqualsTryingEveryToken) {
  REQUIRE_REFERENCE();
  std::mt19937 g(3);
  for (const json& c : reference()) {
    auto s = JsonSchema::compile(c["schema"]);
    std::vector<std::string> texts = {"", "\"", "}", "]", ",", " ", "\n  ", "\\", "\\u", "\xc3", "\xa9", "\xc3\xa9"};
    for (const json& d : c["valid"]) {
      const std::string t = d.get<std::string>();
      for (int k = 0; k < 20; ++k) {
        const size_t at = g() % t.size();
        texts.push_back(t.substr(at, 1 + g() % 6));
      }
    }
    const TokenBytes vocab = index_tokens(texts);
    std::vector<uint8_t> allowed;
    for (int d = 0; d < 6; ++d) {
      const std::string doc = c["valid"][size_t(d)].get<std::string>();
      JsonMatcher m(s);
      for (size_t i = 0; i <= doc.size(); ++i) {
        allowed_tokens(m, vocab, allowed);
        for (size_t t = 0; t < texts.size(); ++t) {
          JsonMatcher copy = m;
          const bool want = !texts[t].empty() && copy.feed(texts[t]);
          ASSERT_EQ(allowed[t], want ? 1 : 0) << c["name"] << " after '" << doc.substr(0, i) << "': token '"
                                              << texts[t] << "'";
        }
        if (i < doc.size()) {
          ASSERT_TRUE(m.feed(static_cast<unsigned char>(doc[i])));
        }
      }
    }
  }
}

}  // namespace
}  // namespace forge::infer
