// `forge bench json`: what guided JSON decoding costs per sequence and step, the token mask in
// the states a document goes through (and while a reasoning model thinks before it), over a real
// tokenizer's vocabulary.
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "bench/bench.h"
#include "core/error.h"
#include "infer/reasoning.h"
#include "infer/token_mask.h"

namespace forge::bench {

int bench_json(const std::string& model_dir, bool json, bool quick) {
  auto tok = data::Tokenizer::from_dir(model_dir);
  const int64_t V = tok->vocab_size();
  const auto t0 = std::chrono::steady_clock::now();  // built once per server: timed once
  const infer::TokenBytes vocab = infer::token_bytes(*tok, V);
  const double t_index = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string shape = "V" + std::to_string(V);
  report({"json.index", shape, "", "", "ms", 1, t_index * 1e3}, json);
  auto schema = infer::JsonSchema::compile(nlohmann::json::parse(R"({"type": "object", "properties": {
      "name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"},
      "tags": {"type": "array", "items": {"enum": ["red", "green", "blue"]}}},
      "required": ["name", "age"], "additionalProperties": false})"));
  // (label, schema or JSON mode, what the output holds so far)
  const struct {
    const char* label;
    bool schema;
    const char* prefix;
  } states[] = {{"object.start", false, ""},          {"object.value", false, "{\"a\": "},
                {"object.string", false, "{\"a\": \"Al"}, {"object.number", false, "{\"a\": [1, 2"},
                {"schema.key", true, "{\"name\": \"Al\", "}, {"schema.enum", true, "{\"name\": \"Al\", \"tags\": [\"r"}};
  std::vector<uint8_t> allowed;
  for (const auto& s : states) {
    infer::JsonMatcher m(s.schema ? schema : infer::JsonSchema::any_object());
    FORGE_CHECK(m.feed(std::string_view(s.prefix)), "bench json: the matcher refused its own prefix ", s.prefix);
    const double t = time_median([&] { infer::allowed_tokens(m, vocab, allowed); }, quick ? 1 : 5, quick ? 0.0 : 0.5);
    int64_t n = 0;
    for (uint8_t a : allowed) n += a;
    report({"json.mask." + std::string(s.label), shape + " ok " + std::to_string(n), "", "", "ms", 1, t * 1e3},
           json);
  }
  // Before the answer of a reasoning model: at the start (the reply may open <think>) and inside.
  const infer::JsonMatcher m(schema);
  using Phase = infer::ReasoningSplitter::Phase;
  for (Phase p : {Phase::Start, Phase::Inside}) {
    const infer::ReasoningSplitter s(p);
    const double t = time_median([&] { infer::reasoning_allowed(s, m, vocab, allowed); }, quick ? 1 : 5,
                                 quick ? 0.0 : 0.5);
    int64_t n = 0;
    for (uint8_t a : allowed) n += a;
    report({std::string("json.mask.reasoning.") + (p == Phase::Start ? "start" : "inside"),
            shape + " ok " + std::to_string(n) + " closers " + std::to_string(vocab.with_angle.size()), "", "", "ms", 1,
            t * 1e3}, json);
  }
  return 0;
}

}  // namespace forge::bench
