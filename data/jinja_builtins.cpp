// Python-like values for the Jinja interpreter: str()/repr(), json.dumps, comparisons,
// arithmetic, indexing, and the filters, tests, methods and functions chat templates use.
#include <charconv>
#include <cmath>
#include <ctime>

#include "data/jinja_internal.h"
#include "data/unicode.h"

namespace forge::data::jinja {
namespace {
// Limits that keep a hostile template from exhausting memory: jinja2 sandbox's MAX_RANGE, and the
// longest string * n makes.
constexpr int64_t kMaxRange = 100000;
constexpr size_t kMaxStringBytes = size_t(64) << 20;
ojson data_of(const Value& v) { return v.kind == Value::Kind::Data ? v.data : ojson(); }

std::string type_name(const Value& v) {
  if (v.undefined()) return "undefined";
  if (v.kind != Value::Kind::Data) return "function";
  switch (v.data.type()) {
    case ojson::value_t::null: return "NoneType";
    case ojson::value_t::boolean: return "bool";
    case ojson::value_t::number_integer:
    case ojson::value_t::number_unsigned: return "int";
    case ojson::value_t::number_float: return "float";
    case ojson::value_t::string: return "str";
    case ojson::value_t::array: return "list";
    case ojson::value_t::object: return "dict";
    default: return "value";
  }
}

// Python's repr() of a float: shortest round-trip digits, exponent form outside [1e-4, 1e16).
std::string py_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, r.ptr);
  const size_t e = sci.find('e');
  std::string mant = sci.substr(0, e);
  const int exp = std::stoi(sci.substr(e + 1));
  const bool neg = mant[0] == '-';
  if (neg) mant.erase(0, 1);
  std::string digits;
  for (char c : mant)
    if (c != '.') digits += c;
  std::string out;
  if (exp < -4 || exp >= 16) {
    out = digits.substr(0, 1) + (digits.size() > 1 ? "." + digits.substr(1) : "");
    char eb[16];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    out += eb;
  } else if (exp < 0) {
    out = "0." + std::string(size_t(-exp - 1), '0') + digits;
  } else if (size_t(exp) + 1 >= digits.size()) {
    out = digits + std::string(size_t(exp) + 1 - digits.size(), '0') + ".0";
  } else {
    out = digits.substr(0, size_t(exp) + 1) + "." + digits.substr(size_t(exp) + 1);
  }
  return neg ? "-" + out : out;
}

std::string py_str_repr(const std::string& s) {
  const bool dq = s.find('\'') != std::string::npos && s.find('"') == std::string::npos;
  const char q = dq ? '"' : '\'';
  std::string out(1, q);
  for (unsigned char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == q) out += std::string("\\") + char(q);
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7f) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    } else {
      out += char(c);
    }
  }
  return out + q;
}

void json_dumps(const ojson& j, int indent, int level, std::string& out) {
  auto newline = [&](int lvl) {
    out += '\n';
    out.append(size_t(indent * lvl), ' ');
  };
  switch (j.type()) {
    case ojson::value_t::null: out += "null"; break;
    case ojson::value_t::boolean: out += j.get<bool>() ? "true" : "false"; break;
    case ojson::value_t::number_float: out += py_float(j.get<double>()); break;
    case ojson::value_t::number_integer:
    case ojson::value_t::number_unsigned: out += j.dump(); break;
    case ojson::value_t::string: {
      out += '"';
      for (unsigned char c : j.get_ref<const std::string&>()) {
        if (c == '"') out += "\\\"";
        else if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else if (c == '\r') out += "\\r";
        else if (c == '\t') out += "\\t";
        else if (c == '\b') out += "\\b";
        else if (c == '\f') out += "\\f";
        else if (c < 0x20) {
          char b[8];
          std::snprintf(b, sizeof b, "\\u%04x", c);
          out += b;
        } else {
          out += char(c);
        }
      }
      out += '"';
      break;
    }
    case ojson::value_t::array: {
      if (j.empty()) { out += "[]"; break; }
      out += '[';
      bool first = true;
      for (auto& x : j) {
        if (!first) out += indent >= 0 ? "," : ", ";
        first = false;
        if (indent >= 0) newline(level + 1);
        json_dumps(x, indent, level + 1, out);
      }
      if (indent >= 0) newline(level);
      out += ']';
      break;
    }
    case ojson::value_t::object: {
      if (j.empty()) { out += "{}"; break; }
      out += '{';
      bool first = true;
      for (auto& [k, v] : j.items()) {
        if (!first) out += indent >= 0 ? "," : ", ";
        first = false;
        if (indent >= 0) newline(level + 1);
        json_dumps(ojson(k), indent, level + 1, out);
        out += ": ";
        json_dumps(v, indent, level + 1, out);
      }
      if (indent >= 0) newline(level);
      out += '}';
      break;
    }
    default: out += "null";
  }
}

int64_t as_int(const Value& v, int line) {
  const ojson& d = v.data;
  if (v.kind == Value::Kind::Data && (d.is_number_integer() || d.is_boolean())) return d.is_boolean() ? d.get<bool>() : d.get<int64_t>();
  fail(line, "expected an integer, got " + type_name(v));
}

bool is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

std::string strip_chars(const std::string& s, const Value* chars, bool left, bool right) {
  auto drop = [&](unsigned char c) {
    if (!chars || chars->undefined() || chars->data.is_null()) return is_ws(c);
    return chars->data.get<std::string>().find(char(c)) != std::string::npos;
  };
  size_t b = 0, e = s.size();
  if (left) while (b < e && drop(s[b])) ++b;
  if (right) while (e > b && drop(s[e - 1])) --e;
  return s.substr(b, e - b);
}

std::string title_case(const std::string& s) {
  std::string out;
  bool start = true;
  for (unsigned char c : s) {
    out += char(start ? std::toupper(c) : std::tolower(c));
    start = !std::isalnum(c);
  }
  return out;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to, int64_t count = -1) {
  if (from.empty()) return s;
  std::string out;
  size_t pos = 0;
  for (size_t i = s.find(from); i != std::string::npos && count != 0; i = s.find(from, pos), --count) {
    out.append(s, pos, i - pos);
    out += to;
    pos = i + from.size();
  }
  return out + s.substr(pos);
}

std::vector<std::string> split(const std::string& s, const Value* sep, int64_t maxsplit) {
  std::vector<std::string> out;
  if (!sep || sep->undefined() || sep->data.is_null()) {  // whitespace split, empty parts dropped
    size_t i = 0;
    while (i < s.size()) {
      while (i < s.size() && is_ws(s[i])) ++i;
      if (i >= s.size()) break;
      size_t j = i;
      if (maxsplit >= 0 && int64_t(out.size()) == maxsplit) j = s.size();
      else while (j < s.size() && !is_ws(s[j])) ++j;
      out.push_back(s.substr(i, j - i));
      i = j;
    }
    return out;
  }
  const std::string d = sep->data.get<std::string>();
  size_t pos = 0;
  for (size_t i = s.find(d); i != std::string::npos && (maxsplit < 0 || int64_t(out.size()) < maxsplit); i = s.find(d, pos)) {
    out.push_back(s.substr(pos, i - pos));
    pos = i + d.size();
  }
  out.push_back(s.substr(pos));
  return out;
}
}  // namespace

const Value* Args::get(size_t i, const char* key) const {
  for (auto& [k, v] : kw)
    if (k == key) return &v;
  return i < pos.size() ? &pos[i] : nullptr;
}

bool truthy(const Value& v) {
  if (v.undefined()) return false;
  if (v.kind != Value::Kind::Data) return true;
  const ojson& d = v.data;
  switch (d.type()) {
    case ojson::value_t::null: return false;
    case ojson::value_t::boolean: return d.get<bool>();
    case ojson::value_t::number_integer:
    case ojson::value_t::number_unsigned: return d.get<int64_t>() != 0;
    case ojson::value_t::number_float: return d.get<double>() != 0;
    case ojson::value_t::string: return !d.get_ref<const std::string&>().empty();  // json::empty() is false for strings
    case ojson::value_t::array:
    case ojson::value_t::object: return !d.empty();
    default: return false;
  }
}

std::string py_repr(const ojson& j) {
  switch (j.type()) {
    case ojson::value_t::null: return "None";
    case ojson::value_t::boolean: return j.get<bool>() ? "True" : "False";
    case ojson::value_t::number_float: return py_float(j.get<double>());
    case ojson::value_t::string: return py_str_repr(j.get<std::string>());
    case ojson::value_t::array: {
      std::string s = "[";
      for (size_t i = 0; i < j.size(); ++i) s += (i ? ", " : "") + py_repr(j[i]);
      return s + "]";
    }
    case ojson::value_t::object: {
      std::string s = "{";
      bool first = true;
      for (auto& [k, v] : j.items()) {
        s += (first ? "" : ", ") + py_str_repr(k) + ": " + py_repr(v);
        first = false;
      }
      return s + "}";
    }
    default: return j.dump();
  }
}

std::string to_str(const Value& v) {
  if (v.undefined()) return "";
  if (v.kind != Value::Kind::Data) return "<function " + v.name + ">";
  return v.data.is_string() ? v.data.get<std::string>() : py_repr(v.data);
}

std::string py_json_dumps(const ojson& j, int indent) {
  std::string out;
  json_dumps(j, indent, 0, out);
  return out;
}

bool values_equal(const Value& a, const Value& b) {
  if (a.undefined() || b.undefined()) return a.undefined() && b.undefined();
  return data_of(a) == data_of(b);
}

int compare_values(const Value& a, const Value& b, int line) {
  const ojson &x = data_of(a), &y = data_of(b);
  if (x.is_number() && y.is_number()) {
    double p = x.get<double>(), q = y.get<double>();
    return p < q ? -1 : p > q ? 1 : 0;
  }
  if (x.is_string() && y.is_string()) return x.get<std::string>().compare(y.get<std::string>());
  fail(line, "cannot compare " + type_name(a) + " with " + type_name(b));
}

Value binary_op(const std::string& op, const Value& a, const Value& b, int line) {
  if (op == "~") return Value::of(to_str(a) + to_str(b));
  const ojson &x = data_of(a), &y = data_of(b);
  if (a.undefined() || b.undefined())
    fail(line, "'" + op + "' on an undefined value");
  if (op == "+" && x.is_string() && y.is_string()) return Value::of(x.get<std::string>() + y.get<std::string>());
  if (op == "+" && x.is_array() && y.is_array()) {
    ojson r = x;
    for (auto& e : y) r.push_back(e);
    return Value::of(r);
  }
  if (op == "*" && x.is_string() && y.is_number_integer()) {
    const std::string& unit = x.get_ref<const std::string&>();
    const int64_t times = y.get<int64_t>();
    if (times > 0 && unit.size() > 0 && double(unit.size()) * double(times) > double(kMaxStringBytes))
      fail(line, "string * " + std::to_string(times) + " would be longer than " + std::to_string(kMaxStringBytes) + " bytes");
    std::string r;
    for (int64_t i = 0; i < times; ++i) r += unit;
    return Value::of(r);
  }
  auto num = [&](const ojson& j) {
    if (j.is_boolean()) return ojson(int64_t(j.get<bool>()));
    if (!j.is_number()) fail(line, "unsupported operand types for " + op + ": " + type_name(a) + " and " + type_name(b));
    return j;
  };
  const ojson p = num(x), q = num(y);
  const bool ints = p.is_number_integer() && q.is_number_integer();
  if (op == "/") {
    if (q.get<double>() == 0) fail(line, "division by zero");
    return Value::of(p.get<double>() / q.get<double>());
  }
  if (ints) {
    const int64_t i = p.get<int64_t>(), k = q.get<int64_t>();
    // Python's ints do not overflow; ours are 64-bit and say so where Python would grow.
    int64_t r = 0;
    auto fits = [&](bool overflow) {
      if (overflow) fail(line, "integer result of " + op + " does not fit in 64 bits");
      return Value::of(r);
    };
    if (op == "+") return fits(__builtin_add_overflow(i, k, &r));
    if (op == "-") return fits(__builtin_sub_overflow(i, k, &r));
    if (op == "*") return fits(__builtin_mul_overflow(i, k, &r));
    if (op == "**") return Value::of(int64_t(std::llround(std::pow(double(i), double(k)))));
    if (k == 0) fail(line, "division by zero");
    if (k == -1 && i == INT64_MIN) return fits(true);  // throws: the quotient is 2^63
    const int64_t fl = i / k - ((i % k != 0) && ((i < 0) != (k < 0)));
    if (op == "//") return Value::of(fl);
    if (op == "%") return Value::of(i - fl * k);
  } else {
    const double i = p.get<double>(), k = q.get<double>();
    if (op == "+") return Value::of(i + k);
    if (op == "-") return Value::of(i - k);
    if (op == "*") return Value::of(i * k);
    if (op == "**") return Value::of(std::pow(i, k));
    if (op == "//") return Value::of(std::floor(i / k));
    if (op == "%") return Value::of(i - std::floor(i / k) * k);
  }
  fail(line, "unsupported operator '" + op + "'");
}

Value get_attr(const Value& obj, const std::string& name) {
  if (obj.kind != Value::Kind::Data) return Value();
  const ojson& d = obj.data;
  if (d.is_object() && d.contains(name)) return Value::of(d[name]);
  static const char* kStrMethods[] = {"strip", "lstrip", "rstrip", "startswith", "endswith", "split", "upper", "lower",
                                      "title", "capitalize", "replace", "find", "count", "join", "format"};
  static const char* kDictMethods[] = {"items", "keys", "values", "get"};
  bool known = false;
  if (d.is_string()) for (const char* m : kStrMethods) known = known || name == m;
  if (d.is_object()) for (const char* m : kDictMethods) known = known || name == m;
  if (known) {  // a method, bound to obj
    Value m;
    m.kind = Value::Kind::Method;
    m.data = d;
    m.name = name;
    return m;
  }
  return Value();
}

Value get_item(const Value& obj, const Value& key, int line) {
  if (obj.kind != Value::Kind::Data) return Value();
  const ojson &d = obj.data, &k = data_of(key);
  if (d.is_object()) {
    const std::string ks = k.is_string() ? k.get<std::string>() : to_str(key);
    return d.contains(ks) ? Value::of(d[ks]) : Value();
  }
  if ((d.is_array() || d.is_string()) && k.is_number_integer()) {
    std::vector<std::string> chars = d.is_string() ? utf8_chars(d.get<std::string>()) : std::vector<std::string>();
    const int64_t n = d.is_array() ? int64_t(d.size()) : int64_t(chars.size());
    int64_t i = k.get<int64_t>();
    if (i < 0) i += n;
    if (i < 0 || i >= n) return Value();
    return d.is_array() ? Value::of(d[size_t(i)]) : Value::of(chars[size_t(i)]);
  }
  if (k.is_string()) return get_attr(obj, k.get<std::string>());
  fail(line, "cannot index " + type_name(obj) + " with " + type_name(key));
}

Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step, int line) {
  const ojson& d = data_of(obj);
  std::vector<ojson> items;
  if (d.is_array()) for (auto& e : d) items.push_back(e);
  else if (d.is_string()) for (auto& c : utf8_chars(d.get<std::string>())) items.push_back(c);
  else fail(line, "cannot slice " + type_name(obj));
  const int64_t n = int64_t(items.size());
  const int64_t st = step.undefined() || data_of(step).is_null() ? 1 : as_int(step, line);
  if (st == 0) fail(line, "slice step cannot be zero");
  auto norm = [&](const Value& v, int64_t def) {
    if (v.undefined() || data_of(v).is_null()) return def;
    int64_t i = as_int(v, line);
    if (i < 0) i += n;
    return st > 0 ? std::clamp<int64_t>(i, 0, n) : std::clamp<int64_t>(i, -1, n - 1);
  };
  const int64_t b = norm(start, st > 0 ? 0 : n - 1), e = norm(stop, st > 0 ? n : -1);
  ojson out = ojson::array();
  std::string s;
  for (int64_t i = b; st > 0 ? i < e : i > e; i += st) {
    if (d.is_string()) s += items[size_t(i)].get<std::string>();
    else out.push_back(items[size_t(i)]);
  }
  return d.is_string() ? Value::of(s) : Value::of(out);
}

std::vector<Value> iterate(const Value& v, int line) {
  std::vector<Value> out;
  if (v.undefined()) return out;
  const ojson& d = data_of(v);
  if (d.is_array()) for (auto& e : d) out.push_back(Value::of(e));
  else if (d.is_object()) for (auto& [k, e] : d.items()) out.push_back(Value::of(k));
  else if (d.is_string()) for (auto& c : utf8_chars(d.get<std::string>())) out.push_back(Value::of(c));
  else fail(line, type_name(v) + " is not iterable");
  return out;
}

bool contains(const Value& container, const Value& item, int line) {
  const ojson &c = data_of(container), &x = data_of(item);
  if (c.is_string()) return x.is_string() && c.get<std::string>().find(x.get<std::string>()) != std::string::npos;
  if (c.is_array()) return std::find(c.begin(), c.end(), x) != c.end();
  if (c.is_object()) return x.is_string() && c.contains(x.get<std::string>());
  if (container.undefined()) return false;
  fail(line, "'in' needs a string, list or dict, got " + type_name(container));
}

// ---- tests -----------------------------------------------------------------------------------
bool call_test(const std::string& name, const Value& v, const Args& a, int line) {
  const ojson& d = data_of(v);
  const bool data = v.kind == Value::Kind::Data;
  if (name == "defined") return !v.undefined();
  if (name == "undefined") return v.undefined();
  if (name == "none") return data && d.is_null();
  if (name == "string") return data && d.is_string();
  if (name == "number") return data && d.is_number();
  if (name == "integer") return data && d.is_number_integer();
  if (name == "float") return data && d.is_number_float();
  if (name == "boolean") return data && d.is_boolean();
  if (name == "true") return data && d.is_boolean() && d.get<bool>();
  if (name == "false") return data && d.is_boolean() && !d.get<bool>();
  if (name == "mapping") return data && d.is_object();
  if (name == "sequence") return data && (d.is_array() || d.is_string() || d.is_object());
  if (name == "iterable") return data && (d.is_array() || d.is_string() || d.is_object());
  if (name == "callable") return v.kind != Value::Kind::Data && !v.undefined();
  if (name == "lower" || name == "upper") {
    if (!d.is_string()) return false;
    for (unsigned char c : d.get<std::string>())
      if (name == "lower" ? std::isupper(c) : std::islower(c)) return false;
    return true;
  }
  if (name == "even" || name == "odd") return (as_int(v, line) % 2 == 0) == (name == "even");
  const Value* arg = a.get(0, "value");
  if (name == "divisibleby") {
    if (!arg) return false;
    const int64_t n = as_int(v, line), d = as_int(*arg, line);
    if (d == 0) fail(line, "divisibleby(0): division by zero");
    return d == -1 || n % d == 0;
  }
  if (name == "equalto" || name == "eq" || name == "==" || name == "sameas") return arg && values_equal(v, *arg);
  if (name == "ne" || name == "!=") return arg && !values_equal(v, *arg);
  if (name == "in") return arg && contains(*arg, v, line);
  if (name == "gt" || name == ">") return arg && compare_values(v, *arg, line) > 0;
  if (name == "ge" || name == ">=") return arg && compare_values(v, *arg, line) >= 0;
  if (name == "lt" || name == "<") return arg && compare_values(v, *arg, line) < 0;
  if (name == "le" || name == "<=") return arg && compare_values(v, *arg, line) <= 0;
  fail(line, "unsupported test 'is " + name + "'");
}

// ---- filters ---------------------------------------------------------------------------------
Value call_filter(const std::string& name, const Value& v, const Args& a, int line) {
  const ojson& d = data_of(v);
  auto str = [&] { return to_str(v); };
  if (name == "safe" || name == "string") return name == "safe" ? v : Value::of(str());
  if (name == "trim") return Value::of(strip_chars(str(), a.get(0, "chars"), true, true));
  if (name == "upper" || name == "lower") {
    std::string s = str();
    for (auto& c : s) c = char(name == "upper" ? std::toupper(static_cast<unsigned char>(c)) : std::tolower(static_cast<unsigned char>(c)));
    return Value::of(s);
  }
  if (name == "title") return Value::of(title_case(str()));
  if (name == "capitalize") {
    std::string s = str();
    for (size_t i = 0; i < s.size(); ++i) s[i] = char(i ? std::tolower(static_cast<unsigned char>(s[i])) : std::toupper(static_cast<unsigned char>(s[i])));
    return Value::of(s);
  }
  if (name == "length" || name == "count") {
    if (d.is_string()) return Value::of(int64_t(utf8_chars(d.get<std::string>()).size()));
    if (d.is_array() || d.is_object()) return Value::of(int64_t(d.size()));
    if (v.undefined()) return Value::of(0);
    fail(line, "length of " + type_name(v));
  }
  if (name == "default" || name == "d") {
    const Value* def = a.get(0, "default_value");
    const Value* boolean = a.get(1, "boolean");
    const bool use = v.undefined() || (boolean && truthy(*boolean) && !truthy(v));
    return use ? (def ? *def : Value::of("")) : v;
  }
  if (name == "tojson") {
    const Value* ind = a.get(0, "indent");
    return Value::of(py_json_dumps(d, ind && !data_of(*ind).is_null() ? int(as_int(*ind, line)) : -1));
  }
  if (name == "join") {
    const Value* sep = a.get(0, "d");
    const Value* attr = a.get(1, "attribute");
    std::string out;
    bool first = true;
    for (auto& x : iterate(v, line)) {
      out += (first ? "" : sep ? to_str(*sep) : "") + to_str(attr ? get_attr(x, to_str(*attr)) : x);
      first = false;
    }
    return Value::of(out);
  }
  if (name == "first" || name == "last") {
    auto items = iterate(v, line);
    if (items.empty()) return Value();
    return name == "first" ? items.front() : items.back();
  }
  if (name == "list") {
    ojson out = ojson::array();
    for (auto& x : iterate(v, line)) out.push_back(x.data);
    return Value::of(out);
  }
  if (name == "reverse") {
    if (d.is_string()) {
      auto ch = utf8_chars(d.get<std::string>());
      std::string s;
      for (auto it = ch.rbegin(); it != ch.rend(); ++it) s += *it;
      return Value::of(s);
    }
    ojson out = ojson::array();
    auto items = iterate(v, line);
    for (auto it = items.rbegin(); it != items.rend(); ++it) out.push_back(it->data);
    return Value::of(out);
  }
  if (name == "items") {
    ojson out = ojson::array();
    if (d.is_object()) for (auto& [k, x] : d.items()) out.push_back(ojson::array({k, x}));
    return Value::of(out);
  }
  if (name == "int") {
    if (d.is_number_integer()) return Value::of(d.get<int64_t>());
    if (d.is_number()) {
      const double x = d.get<double>();  // Python truncates; out of int64's range (or nan) clamps here
      return Value::of(x != x ? int64_t(0) : x >= 9.2e18 ? INT64_MAX : x <= -9.2e18 ? INT64_MIN : int64_t(x));
    }
    try {
      return Value::of(int64_t(std::stoll(str())));
    } catch (...) {
      return Value::of(0);
    }
  }
  if (name == "float") {
    if (d.is_number()) return Value::of(d.get<double>());
    try {
      return Value::of(std::stod(str()));
    } catch (...) {
      return Value::of(0.0);
    }
  }
  if (name == "abs") return d.is_number_integer() ? Value::of(std::llabs(d.get<int64_t>())) : Value::of(std::fabs(d.get<double>()));
  if (name == "round") {
    const Value* p = a.get(0, "precision");
    const double m = std::pow(10.0, p ? double(as_int(*p, line)) : 0.0);
    return Value::of(std::nearbyint(d.get<double>() * m) / m);
  }
  if (name == "replace") {
    const Value *from = a.get(0, "old"), *to = a.get(1, "new"), *cnt = a.get(2, "count");
    if (!from || !to) fail(line, "replace needs two arguments");
    return Value::of(replace_all(str(), to_str(*from), to_str(*to), cnt ? as_int(*cnt, line) : -1));
  }
  if (name == "indent") {
    const Value *w = a.get(0, "width"), *first = a.get(1, "first"), *blank = a.get(2, "blank");
    const std::string pad = w && data_of(*w).is_string() ? to_str(*w) : std::string(size_t(w ? as_int(*w, line) : 4), ' ');
    std::string s = str(), out;
    size_t pos = 0;
    bool first_line = true;
    while (pos <= s.size()) {
      size_t nl = s.find('\n', pos);
      std::string ln = s.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
      const bool indent = first_line ? (first && truthy(*first)) : (!ln.empty() || (blank && truthy(*blank)));
      out += (indent ? pad : "") + ln;
      if (nl == std::string::npos) break;
      out += '\n';
      pos = nl + 1;
      first_line = false;
    }
    return Value::of(out);
  }
  if (name == "sum") {
    Value acc = Value::of(0);
    for (auto& x : iterate(v, line)) acc = binary_op("+", acc, x, line);
    return acc;
  }
  if (name == "unique") {
    ojson out = ojson::array();
    for (auto& x : iterate(v, line))
      if (std::find(out.begin(), out.end(), x.data) == out.end()) out.push_back(x.data);
    return Value::of(out);
  }
  if (name == "selectattr" || name == "rejectattr" || name == "select" || name == "reject") {
    const bool by_attr = name.back() == 'r';
    const bool keep_if = name[0] == 's';
    size_t k = 0;
    std::string attr;
    if (by_attr) {
      if (a.pos.empty()) fail(line, name + " needs an attribute name");
      attr = to_str(a.pos[k++]);
    }
    std::string test = k < a.pos.size() ? to_str(a.pos[k++]) : "";
    Args targs;
    for (; k < a.pos.size(); ++k) targs.pos.push_back(a.pos[k]);
    ojson out = ojson::array();
    for (auto& x : iterate(v, line)) {
      Value t = by_attr ? get_attr(x, attr) : x;
      const bool ok = test.empty() ? truthy(t) : call_test(test, t, targs, line);
      if (ok == keep_if) out.push_back(x.data);
    }
    return Value::of(out);
  }
  if (name == "map") {
    ojson out = ojson::array();
    const Value* attr = a.get(99, "attribute");
    for (auto& x : iterate(v, line)) {
      if (attr) {
        Value r = get_attr(x, to_str(*attr));
        if (r.undefined()) r = a.get(99, "default") ? *a.get(99, "default") : Value();
        out.push_back(r.data);
      } else {
        if (a.pos.empty()) fail(line, "map needs a filter name or attribute=");
        Args fargs;
        fargs.pos.assign(a.pos.begin() + 1, a.pos.end());
        out.push_back(call_filter(to_str(a.pos[0]), x, fargs, line).data);
      }
    }
    return Value::of(out);
  }
  if (name == "dictsort") {
    std::vector<std::pair<std::string, ojson>> kv;
    for (auto& [k, x] : d.items()) kv.emplace_back(k, x);
    std::sort(kv.begin(), kv.end(), [](auto& p, auto& q) { return p.first < q.first; });
    ojson out = ojson::array();
    for (auto& [k, x] : kv) out.push_back(ojson::array({k, x}));
    return Value::of(out);
  }
  if (name == "sort") {
    const Value* attr = a.get(2, "attribute");
    const Value* rev = a.get(0, "reverse");
    std::vector<Value> items = iterate(v, line);
    std::stable_sort(items.begin(), items.end(), [&](const Value& p, const Value& q) {
      Value x = attr ? get_attr(p, to_str(*attr)) : p, y = attr ? get_attr(q, to_str(*attr)) : q;
      return compare_values(x, y, line) < 0;
    });
    if (rev && truthy(*rev)) std::reverse(items.begin(), items.end());
    ojson out = ojson::array();
    for (auto& x : items) out.push_back(x.data);
    return Value::of(out);
  }
  if (name == "wordcount") return Value::of(int64_t(split(str(), nullptr, -1).size()));
  if (name == "e" || name == "escape") {
    std::string out;
    for (char c : str()) {
      switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&#34;"; break;
        case '\'': out += "&#39;"; break;
        default: out += c;
      }
    }
    return Value::of(out);
  }
  fail(line, "unsupported filter '|" + name + "'");
}

// ---- methods ---------------------------------------------------------------------------------
Value call_method(const Value& self, const std::string& name, const Args& a, int line) {
  const ojson& d = self.data;
  if (d.is_string()) {
    const std::string s = d.get<std::string>();
    const Value* a0 = a.get(0, "");
    if (name == "strip") return Value::of(strip_chars(s, a0, true, true));
    if (name == "lstrip") return Value::of(strip_chars(s, a0, true, false));
    if (name == "rstrip") return Value::of(strip_chars(s, a0, false, true));
    if (name == "startswith" || name == "endswith") {
      if (!a0) fail(line, name + " needs an argument");
      std::vector<std::string> opts;
      if (a0->data.is_array()) for (auto& x : a0->data) opts.push_back(x.get<std::string>());
      else opts.push_back(to_str(*a0));
      for (auto& o : opts) {
        if (name == "startswith" ? s.compare(0, o.size(), o) == 0
                                 : (s.size() >= o.size() && s.compare(s.size() - o.size(), o.size(), o) == 0))
          return Value::of(true);
      }
      return Value::of(false);
    }
    if (name == "split") {
      const Value* m = a.get(1, "maxsplit");
      ojson out = ojson::array();
      for (auto& p : split(s, a.get(0, "sep"), m ? as_int(*m, line) : -1)) out.push_back(p);
      return Value::of(out);
    }
    if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") return call_filter(name, self, {}, line);
    if (name == "replace") return call_filter("replace", self, a, line);
    if (name == "find") return Value::of(a0 ? int64_t(s.find(to_str(*a0))) : -1);
    if (name == "count") {
      if (!a0) fail(line, "count needs an argument");
      int64_t n = 0;
      const std::string sub = to_str(*a0);
      for (size_t i = s.find(sub); !sub.empty() && i != std::string::npos; i = s.find(sub, i + sub.size())) ++n;
      return Value::of(n);
    }
    if (name == "join") {
      std::string out;
      bool first = true;
      for (auto& x : iterate(a0 ? *a0 : Value(), line)) out += (first ? "" : s) + to_str(x), first = false;
      return Value::of(out);
    }
    if (name == "format") {
      std::string out;
      size_t k = 0;
      for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '{' && i + 1 < s.size() && s[i + 1] == '}') {
          out += k < a.pos.size() ? to_str(a.pos[k++]) : "";
          ++i;
        } else {
          out += s[i];
        }
      }
      return Value::of(out);
    }
  }
  if (d.is_object()) {
    if (name == "items") return call_filter("items", self, {}, line);
    if (name == "keys" || name == "values") {
      ojson out = ojson::array();
      for (auto& [k, x] : d.items()) out.push_back(name == "keys" ? ojson(k) : x);
      return Value::of(out);
    }
    if (name == "get") {
      const Value* k = a.get(0, "key");
      if (!k) fail(line, "get needs a key");
      Value r = get_item(self, *k, line);
      return r.undefined() ? (a.get(1, "default") ? *a.get(1, "default") : Value::of(nullptr)) : r;
    }
  }
  fail(line, "unsupported method '." + name + "()' on " + type_name(self));
}

// ---- global functions -------------------------------------------------------------------------
bool is_function(const std::string& name) {
  return name == "range" || name == "namespace" || name == "raise_exception" || name == "dict" ||
         name == "strftime_now";
}

Value call_function(const std::string& name, const Args& a, int line) {
  if (name == "raise_exception") {
    throw Error("template raised an exception: " + (a.pos.empty() ? std::string() : to_str(a.pos[0])));
  }
  if (name == "namespace" || name == "dict") {
    ojson o = a.pos.empty() || !data_of(a.pos[0]).is_object() ? ojson::object() : a.pos[0].data;
    for (auto& [k, v] : a.kw) o[k] = v.data;
    return Value::of(o);
  }
  if (name == "range") {
    int64_t start = 0, stop = 0, step = 1;
    if (a.pos.size() == 1) stop = as_int(a.pos[0], line);
    else if (a.pos.size() >= 2) start = as_int(a.pos[0], line), stop = as_int(a.pos[1], line);
    if (a.pos.size() >= 3) step = as_int(a.pos[2], line);
    if (step == 0) fail(line, "range step cannot be zero");
    // transformers renders in jinja2's sandbox, which refuses ranges over MAX_RANGE items.
    const __int128 span = step > 0 ? __int128(stop) - start : __int128(start) - stop;
    const __int128 stride = step > 0 ? __int128(step) : -__int128(step);
    const __int128 count = span <= 0 ? 0 : (span + stride - 1) / stride;
    if (count > kMaxRange) fail(line, "range of " + std::to_string(int64_t(count)) + " items is too big (jinja2's sandbox allows 100000)");
    ojson out = ojson::array();
    for (int64_t k = 0; k < int64_t(count); ++k) out.push_back(int64_t(start + __int128(k) * step));
    return Value::of(out);
  }
  if (name == "strftime_now") {
    std::time_t t = std::time(nullptr);
    char buf[128];
    std::strftime(buf, sizeof buf, a.pos.empty() ? "%Y-%m-%d" : to_str(a.pos[0]).c_str(), std::localtime(&t));
    return Value::of(std::string(buf));
  }
  fail(line, "unknown function '" + name + "'");
}

}  // namespace forge::data::jinja
