#include "infer/json_schema.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "core/error.h"

namespace forge::infer {
namespace {
using json = nlohmann::json;

// Keywords that describe a value without constraining it.
const std::set<std::string> kAnnotations = {
    "title", "description", "default", "examples", "$schema", "$id", "$anchor", "$comment", "deprecated",
    "readOnly", "writeOnly", "format", "contentMediaType", "contentEncoding", "nullable", "$defs", "definitions",
    "discriminator"};
const std::vector<std::string> kSupported = {
    "type", "enum", "const", "properties", "required", "additionalProperties", "items", "prefixItems", "minItems",
    "maxItems", "minLength", "maxLength", "anyOf", "oneOf", "allOf", "$ref", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "multipleOf"};
constexpr int kMaxDepth = 64;
constexpr size_t kMaxNodes = 4096;

SchemaNode any_node() {
  SchemaNode n;
  n.additional = 0;
  n.items = 0;
  return n;
}

uint8_t type_bit(const std::string& t, const std::string& at) {
  if (t == "null") return SchemaNode::Null;
  if (t == "boolean") return SchemaNode::Boolean;
  if (t == "integer") return SchemaNode::Integer;
  if (t == "number") return SchemaNode::Number;
  if (t == "string") return SchemaNode::String;
  if (t == "array") return SchemaNode::Array;
  if (t == "object") return SchemaNode::Object;
  throw Error(at + ": unknown type '" + t + "' (null, boolean, integer, number, string, array or object)");
}

// The types a literal value has (1.0 is an integer too, as JSON Schema counts).
uint8_t value_types(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return SchemaNode::Null;
    case json::value_t::boolean: return SchemaNode::Boolean;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return SchemaNode::Integer | SchemaNode::Number;
    case json::value_t::number_float: {
      const double d = v.get<double>();
      return SchemaNode::Number | (d == double(int64_t(d)) ? SchemaNode::Integer : 0);
    }
    case json::value_t::string: return SchemaNode::String;
    case json::value_t::array: return SchemaNode::Array;
    default: return SchemaNode::Object;
  }
}

int64_t count_of(const json& j, const std::string& key, const std::string& at) {
  const json& v = j.at(key);
  FORGE_CHECK(v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0), at, ": '", key,
              "' must be a non-negative integer, got ", v.dump());
  return v.get<int64_t>();
}
}  // namespace

class SchemaCompiler {
 public:
  SchemaCompiler(JsonSchema& out, const json& root) : s_(out), root_(root) { s_.nodes_.push_back(any_node()); }

  int32_t compile(const json& j, const std::string& at, int depth) {
    FORGE_CHECK(depth <= kMaxDepth, at, ": schemas nested deeper than ", kMaxDepth, " levels are not supported");
    if (j.is_boolean()) {
      FORGE_CHECK(j.get<bool>(), at, ": the schema false admits no value");
      return 0;
    }
    FORGE_CHECK(j.is_object(), at, ": a schema must be an object or a boolean, got ", j.dump());
    if (auto it = memo_.find(&j); it != memo_.end()) return it->second;
    std::vector<std::string> constraints;
    for (auto& [k, v] : j.items()) {
      if (kAnnotations.count(k) || k.rfind("x-", 0) == 0) continue;
      if (std::find(kSupported.begin(), kSupported.end(), k) == kSupported.end()) {
        std::string list;
        for (const std::string& s : kSupported) list += (list.empty() ? "" : ", ") + s;
        throw Error(at + ": '" + k + "' is not supported (supported keywords: " + list + ")");
      }
      constraints.push_back(k);
    }
    auto alone = [&](const char* key, const char* also = "") {  // key takes no other constraint but `also`
      for (const std::string& k : constraints)
        if (k != key && k != also) throw Error(at + ": '" + k + "' alongside '" + key + "' is not supported");
    };
    if (j.contains("$ref")) {
      alone("$ref");
      const json& ref = j["$ref"];
      FORGE_CHECK(ref.is_string() && ref.get<std::string>().rfind('#', 0) == 0, at,
                  ": '$ref' must point into this schema ('#/...'), got ", ref.dump());
      const std::string target = ref.get<std::string>();
      const json* t = nullptr;
      try {
        t = &root_.at(json::json_pointer(target.substr(1)));
      } catch (const json::exception&) {
        throw Error(at + ": '$ref' " + target + " names nothing in the schema");
      }
      return alias(j, *t, target, depth);
    }
    if (j.contains("allOf")) {
      alone("allOf");
      const json& all = j["allOf"];
      FORGE_CHECK(all.is_array() && all.size() == 1, at, ": 'allOf' is supported with exactly one schema");
      return alias(j, all[0], at + "/allOf/0", depth);
    }
    FORGE_CHECK(s_.nodes_.size() < kMaxNodes, at, ": schemas of more than ", kMaxNodes, " nodes are not supported");
    const int32_t idx = int32_t(s_.nodes_.size());
    s_.nodes_.emplace_back();
    memo_[&j] = idx;
    SchemaNode n;
    for (const char* u : {"anyOf", "oneOf"}) {
      if (!j.contains(u)) continue;
      alone(u);
      const json& alts = j[u];
      FORGE_CHECK(alts.is_array() && !alts.empty(), at, ": '", u, "' must be a non-empty array of schemas");
      for (size_t i = 0; i < alts.size(); ++i)
        n.any_of.push_back(compile(alts[i], at + "/" + u + "/" + std::to_string(i), depth + 1));
      s_.nodes_[size_t(idx)] = std::move(n);
      return idx;
    }
    if (j.contains("type")) {
      const json& t = j["type"];
      n.types = 0;
      if (t.is_string()) n.types = type_bit(t.get<std::string>(), at);
      else if (t.is_array() && !t.empty())
        for (const json& e : t) {
          FORGE_CHECK(e.is_string(), at, ": 'type' must be a type name or an array of them, got ", t.dump());
          n.types |= type_bit(e.get<std::string>(), at);
        }
      else throw Error(at + ": 'type' must be a type name or a non-empty array of them, got " + t.dump());
    }
    if (j.contains("enum") || j.contains("const")) {
      const bool is_enum = j.contains("enum");
      alone(is_enum ? "enum" : "const", "type");
      const json values = is_enum ? j["enum"] : json::array({j["const"]});
      FORGE_CHECK(values.is_array() && !values.empty(), at, ": 'enum' must be a non-empty array");
      for (const json& v : values)
        if (value_types(v) & n.types) n.literals.push_back(v.dump());
      std::sort(n.literals.begin(), n.literals.end());
      n.literals.erase(std::unique(n.literals.begin(), n.literals.end()), n.literals.end());
      FORGE_CHECK(!n.literals.empty(), at, ": no value of '", is_enum ? "enum" : "const", "' has the schema's 'type'");
    }
    object_keywords(j, n, at, depth);
    array_keywords(j, n, at, depth);
    if (j.contains("minLength")) n.min_length = count_of(j, "minLength", at);
    if (j.contains("maxLength")) n.max_length = count_of(j, "maxLength", at);
    FORGE_CHECK(n.min_length <= n.max_length, at, ": 'minLength' exceeds 'maxLength'");
    number_keywords(j, n, at);
    s_.nodes_[size_t(idx)] = std::move(n);
    return idx;
  }

 private:
  // A schema that is another one ($ref, a one-element allOf) shares its node.
  int32_t alias(const json& j, const json& target, const std::string& at, int depth) {
    FORGE_CHECK(aliasing_.insert(&j).second, at, ": '$ref' and 'allOf' go round in a cycle with no schema in it");
    const int32_t idx = compile(target, at, depth + 1);
    aliasing_.erase(&j);
    memo_[&j] = idx;
    return idx;
  }

  // Bounds and step in billionths; the bounds rounded inwards to multiples of the step (whole
  // numbers for integers).
  static void number_keywords(const json& j, SchemaNode& n, const std::string& at) {
    const __int128 scale = SchemaNode::kNumberScale;
    const __int128 reach = __int128(1000000000000000000LL) * scale;  // past any value kIntDigits digits write
    n.lo = -reach;
    n.hi = reach;
    for (const char* k : {"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"}) {
      if (!j.contains(k)) continue;
      FORGE_CHECK(j[k].is_number(), at, ": '", k, "' must be a number, got ", j[k].dump(),
                  " (draft-4's boolean exclusiveMinimum/exclusiveMaximum are not supported)");
      n.bounded = true;
      long double x = std::clamp<long double>(j[k].get<long double>() * scale, -1e30L, 1e30L);
      // A bound's double is the nearest to its decimal (0.1 is 0.1000000000000000055): snap it to
      // the billionth it stands for.
      if (std::fabs(x - std::nearbyint(x)) < 1e-3L) x = std::nearbyint(x);
      const std::string key = k;
      if (key == "minimum") n.lo = std::max(n.lo, __int128(std::ceil(x)));
      if (key == "exclusiveMinimum") n.lo = std::max(n.lo, __int128(std::floor(x)) + 1);
      if (key == "maximum") n.hi = std::min(n.hi, __int128(std::floor(x)));
      if (key == "exclusiveMaximum") n.hi = std::min(n.hi, __int128(std::ceil(x)) - 1);
    }
    n.step = n.types & SchemaNode::Number ? 1 : scale;
    if (j.contains("multipleOf")) {
      const json& m = j["multipleOf"];
      FORGE_CHECK(m.is_number() && m.get<double>() > 0, at, ": 'multipleOf' must be a number above 0, got ", m.dump());
      const long double x = m.get<long double>() * scale, r = std::nearbyint(x);
      FORGE_CHECK(r >= 1 && std::fabs(x - r) < 1e-3L && r < 1e27L, at, ": 'multipleOf' ", m.dump(),
                  " is not a whole number of billionths (finer steps are not supported)");
      n.bounded = true;
      const __int128 step = __int128(r);
      __int128 a = n.step, b = step;  // the least common multiple of the two steps
      while (b != 0) a = std::exchange(b, a % b);
      n.step = n.step / a * step;
    }
    if (!n.bounded) return;
    FORGE_CHECK(n.types & (SchemaNode::Integer | SchemaNode::Number), at,
                ": 'minimum'/'maximum'/'multipleOf' need a schema of numbers (its 'type' has none)");
    auto floor_div = [](__int128 a, __int128 b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); };
    n.lo = -floor_div(-n.lo, n.step) * n.step;
    n.hi = floor_div(n.hi, n.step) * n.step;
    n.lo = std::max(n.lo, -reach + 1);
    n.hi = std::min(n.hi, reach - 1);
    FORGE_CHECK(n.lo <= n.hi, at, ": no ", n.types & SchemaNode::Number ? "number" : "integer",
                " lies within 'minimum'/'maximum' (and the exclusive bounds, and 'multipleOf')");
  }

  void object_keywords(const json& j, SchemaNode& n, const std::string& at, int depth) {
    std::vector<std::pair<std::string, int32_t>> keys;
    if (j.contains("properties")) {
      const json& props = j["properties"];
      FORGE_CHECK(props.is_object(), at, ": 'properties' must be an object");
      FORGE_CHECK(props.size() <= JsonSchema::kMaxKeys, at, ": more than ", JsonSchema::kMaxKeys,
                  " properties in one object are not supported");
      for (auto& [name, sub] : props.items())
        keys.emplace_back(json(name).dump(), compile(sub, at + "/properties/" + name, depth + 1));
      std::sort(keys.begin(), keys.end());
    }
    for (auto& [text, node] : keys) {
      n.keys.push_back(text);
      n.key_nodes.push_back(node);
    }
    n.required.assign(n.keys.size(), 0);
    if (j.contains("required")) {
      const json& req = j["required"];
      FORGE_CHECK(req.is_array(), at, ": 'required' must be an array of property names");
      for (const json& r : req) {
        FORGE_CHECK(r.is_string(), at, ": 'required' must be an array of property names, got ", r.dump());
        const auto it = std::lower_bound(n.keys.begin(), n.keys.end(), json(r).dump());
        FORGE_CHECK(it != n.keys.end() && *it == json(r).dump(), at, ": required property ", r.dump(),
                    " is not in 'properties'");
        n.required[size_t(it - n.keys.begin())] = 1;
      }
    }
    // Without additionalProperties, an object that lists its properties takes only those.
    n.additional = j.contains("properties") ? -1 : 0;
    if (j.contains("additionalProperties")) {
      const json& a = j["additionalProperties"];
      n.additional = a.is_boolean() && !a.get<bool>() ? -1 : compile(a, at + "/additionalProperties", depth + 1);
    }
  }

  void array_keywords(const json& j, SchemaNode& n, const std::string& at, int depth) {
    auto tuple = [&](const json& a, const std::string& where) {
      FORGE_CHECK(a.is_array(), at, ": '", where, "' must be an array of schemas");
      for (size_t i = 0; i < a.size(); ++i)
        n.prefix_items.push_back(compile(a[i], at + "/" + where + "/" + std::to_string(i), depth + 1));
    };
    if (j.contains("prefixItems")) tuple(j["prefixItems"], "prefixItems");
    n.items = 0;
    if (j.contains("items")) {
      const json& it = j["items"];
      if (it.is_array()) {  // draft 4-7's tuple form: nothing may follow the listed items
        FORGE_CHECK(!j.contains("prefixItems"), at, ": 'items' as an array alongside 'prefixItems'");
        tuple(it, "items");
        n.items = -1;
      } else {
        n.items = it.is_boolean() && !it.get<bool>() ? -1 : compile(it, at + "/items", depth + 1);
      }
    }
    if (j.contains("minItems")) n.min_items = count_of(j, "minItems", at);
    if (j.contains("maxItems")) n.max_items = count_of(j, "maxItems", at);
    FORGE_CHECK(n.min_items <= n.max_items, at, ": 'minItems' exceeds 'maxItems'");
    FORGE_CHECK(n.items >= 0 || n.min_items <= int64_t(n.prefix_items.size()), at, ": 'minItems' ", n.min_items,
                " needs more items than the schema allows");
  }

  JsonSchema& s_;
  const json& root_;
  std::unordered_map<const json*, int32_t> memo_;
  std::unordered_set<const json*> aliasing_;
};

std::shared_ptr<const JsonSchema> JsonSchema::compile(const nlohmann::json& schema) {
  auto s = std::make_shared<JsonSchema>();
  SchemaCompiler c(*s, schema);
  s->root_ = c.compile(schema, "#", 0);
  return s;
}

std::shared_ptr<const JsonSchema> JsonSchema::any_object() {
  static const std::shared_ptr<const JsonSchema> s = [] {
    auto o = std::make_shared<JsonSchema>();
    o->nodes_.push_back(any_node());
    SchemaNode obj = any_node();
    obj.types = SchemaNode::Object;
    o->nodes_.push_back(obj);
    o->root_ = 1;
    return o;
  }();
  return s;
}

}  // namespace forge::infer
