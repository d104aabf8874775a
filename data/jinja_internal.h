// Jinja interpreter internals shared by jinja.cpp (parser, evaluator) and jinja_builtins.cpp
// (Python-like values, filters, tests, methods).
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/jinja.h"

namespace forge::data::jinja {

// A runtime value: undefined, plain data, or something callable.
struct Value {
  enum class Kind { Undefined, Data, Macro, Function, Method } kind = Kind::Undefined;
  ojson data;        // Data; Method: the object it is bound to
  std::string name;  // Macro / Function / Method name
  static Value of(ojson j) {
    Value v;
    v.kind = Kind::Data;
    v.data = std::move(j);
    return v;
  }
  bool undefined() const { return kind == Kind::Undefined; }
};

struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
  const Value* get(size_t i, const char* key) const;  // positional i or keyword key
};

[[noreturn]] void fail(int line, const std::string& msg);

bool truthy(const Value& v);
std::string to_str(const Value& v);            // Python str()
std::string py_repr(const ojson& j);           // Python repr()
std::string py_json_dumps(const ojson& j, int indent);  // json.dumps(ensure_ascii=False)
bool values_equal(const Value& a, const Value& b);
int compare_values(const Value& a, const Value& b, int line);  // <0, 0, >0
Value binary_op(const std::string& op, const Value& a, const Value& b, int line);
Value get_attr(const Value& obj, const std::string& name);
Value get_item(const Value& obj, const Value& key, int line);
Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step, int line);
std::vector<Value> iterate(const Value& v, int line);
bool contains(const Value& container, const Value& item, int line);

// Filters, tests, methods and global functions. `call_filter` may need to apply a test or
// another filter by name (select, map): it gets this table back.
Value call_filter(const std::string& name, const Value& v, const Args& a, int line);
bool call_test(const std::string& name, const Value& v, const Args& a, int line);
Value call_method(const Value& self, const std::string& name, const Args& a, int line);
Value call_function(const std::string& name, const Args& a, int line);
bool is_function(const std::string& name);

}  // namespace forge::data::jinja
