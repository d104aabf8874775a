// Structured outputs: a JSON Schema (`response_format: {"type": "json_schema", ...}`) compiled into
// the graph of nodes that JsonMatcher walks. The subset covers what OpenAI's strict mode, pydantic
// and zod emit: type (and unions of types), enum, const, properties, required,
// additionalProperties, items, prefixItems, minItems, maxItems, minLength, maxLength, anyOf, oneOf
// (read as anyOf), a one-element allOf, and $ref into the same document (recursion included).
// Annotations (title, description, default, examples, format, ...) are ignored; any other keyword
// is refused with its location, never silently dropped.
//
// Where JSON Schema leaves something open, the output is held to a subset of the valid documents:
// an object schema with `properties` and no `additionalProperties` takes only the listed keys,
// enum and const values are written compactly, and a declared key is written in its shortest
// escaping. Every document the matcher completes validates against the schema.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace forge::infer {

struct SchemaNode {
  enum Type : uint8_t {
    Null = 1, Boolean = 2, Integer = 4, Number = 8 /* integers included */, String = 16, Array = 32, Object = 64,
    AnyType = 127,
  };
  static constexpr int64_t kUnbounded = INT64_MAX;
  uint8_t types = AnyType;
  std::vector<int32_t> any_of;        // a union of these nodes; nothing else is set
  std::vector<std::string> literals;  // enum/const: the values' JSON texts, sorted; empty: any value of `types`
  // Objects: declared keys as JSON string texts (quotes included), sorted, with their schemas.
  std::vector<std::string> keys;
  std::vector<int32_t> key_nodes;
  std::vector<uint8_t> required;
  int32_t additional = -1;            // schema of any other key; -1: no other keys
  // Arrays: item i follows prefix_items[i], then `items` (-1: no more items).
  std::vector<int32_t> prefix_items;
  int32_t items = -1;
  int64_t min_items = 0, max_items = kUnbounded;
  int64_t min_length = 0, max_length = kUnbounded;  // strings, in code points (as Python counts them)
  // Numbers with minimum / maximum / exclusiveMinimum / exclusiveMaximum / multipleOf: multiples of
  // step in [lo, hi], in billionths (kNumberScale), written without exponent in at most kIntDigits
  // integer digits and kFracDigits fraction digits, so every prefix's reachable values are known
  // exactly.
  static constexpr int kIntDigits = 18, kFracDigits = 9;
  static constexpr int64_t kNumberScale = 1000000000;
  bool bounded = false;
  __int128 lo = 0, hi = 0, step = 1;
};

class JsonSchema {
 public:
  static constexpr size_t kMaxKeys = 128;  // declared keys per object
  // Throws forge::Error naming the location (a JSON pointer) and the keyword it cannot take.
  static std::shared_ptr<const JsonSchema> compile(const nlohmann::json& schema);
  // JSON mode (`json_object`): any object.
  static std::shared_ptr<const JsonSchema> any_object();

  const SchemaNode& node(int32_t i) const { return nodes_[size_t(i)]; }
  int32_t root() const { return root_; }

 private:
  friend class SchemaCompiler;
  std::vector<SchemaNode> nodes_;  // nodes_[0] takes any JSON value
  int32_t root_ = 0;
};

}  // namespace forge::infer
