// Jinja templates: lexer (tags, whitespace control), recursive-descent parser, tree-walking
// evaluator. Values and builtins live in jinja_builtins.cpp.
#include <charconv>
#include <cstdlib>
#include <cstring>

#include "data/jinja_internal.h"

namespace forge::data {
namespace jinja {

using NodeP = std::shared_ptr<Node>;
using Body = std::vector<NodeP>;

struct Node {
  enum T { Text, Output, If, For, Set, SetBlock, Macro, Break, Continue, Lit, List, Dict, Name, Attr, Item, Slice,
           Call, Filter, Test, Unary, Binary, And, Or, Not, Cond } t;
  int line = 0;
  std::string s;
  ojson lit;
  Body kids;
  std::vector<std::pair<std::string, NodeP>> kw;
  std::vector<std::string> names;
  std::vector<Body> branches;
  Body body, else_body;
  bool neg = false;
};

[[noreturn]] void fail(int line, const std::string& msg) {
  throw Error("chat template line " + std::to_string(line) + ": " + msg);
}

namespace {
// ---- lexing -----------------------------------------------------------------------------------
struct Seg {
  enum Kind { TextSeg, ExprSeg, StmtSeg, CommentSeg } kind;
  std::string body;
  int line;
  bool strip_before = false, strip_after = false, plus = false;
};

std::vector<Seg> split_segments(const std::string& src) {
  std::vector<Seg> segs;
  size_t i = 0;
  int line = 1;
  auto count_lines = [&](size_t a, size_t b) {
    for (size_t k = a; k < b; ++k) line += src[k] == '\n';
  };
  while (i < src.size()) {
    size_t open = std::string::npos;
    for (size_t k = src.find('{', i); k != std::string::npos; k = src.find('{', k + 1))
      if (k + 1 < src.size() && (src[k + 1] == '{' || src[k + 1] == '%' || src[k + 1] == '#')) {
        open = k;
        break;
      }
    if (open == std::string::npos) {
      segs.push_back({Seg::TextSeg, src.substr(i), line});
      break;
    }
    if (open > i) segs.push_back({Seg::TextSeg, src.substr(i, open - i), line});
    count_lines(i, open);
    const char kind = src[open + 1];
    Seg s{kind == '{' ? Seg::ExprSeg : kind == '%' ? Seg::StmtSeg : Seg::CommentSeg, "", line};
    size_t p = open + 2;
    if (p < src.size() && src[p] == '-') s.strip_before = true, ++p;
    else if (p < src.size() && src[p] == '+') s.plus = true, ++p;
    const std::string close = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
    size_t end = std::string::npos;
    if (kind == '#') {
      end = src.find(close, p);
    } else {  // skip string literals when looking for the close
      char quote = 0;
      for (size_t k = p; k + 1 < src.size(); ++k) {
        if (quote) {
          if (src[k] == '\\') ++k;
          else if (src[k] == quote) quote = 0;
        } else if (src[k] == '\'' || src[k] == '"') {
          quote = src[k];
        } else if (src.compare(k, 2, close) == 0) {
          end = k;
          break;
        }
      }
    }
    if (end == std::string::npos) fail(line, "unclosed '" + src.substr(open, 2) + "'");
    size_t body_end = end;
    if (body_end > p && src[body_end - 1] == '-') s.strip_after = true, --body_end;
    s.body = src.substr(p, body_end - p);
    count_lines(open, end + 2);
    i = end + 2;
    // {% raw %} ... {% endraw %}: the text in between is literal.
    if (s.kind == Seg::StmtSeg && s.body.find_first_not_of(" \t\n") != std::string::npos) {
      std::string b = s.body;
      b.erase(0, b.find_first_not_of(" \t\n"));
      b.erase(b.find_last_not_of(" \t\n") + 1);
      if (b == "raw") {
        size_t e = src.find("endraw", i);
        size_t tag = e == std::string::npos ? e : src.rfind("{%", e);
        if (tag == std::string::npos) fail(line, "unclosed raw block");
        segs.push_back({Seg::TextSeg, src.substr(i, tag - i), line});
        count_lines(i, src.find("%}", e) + 2);
        i = src.find("%}", e) + 2;
        continue;
      }
    }
    segs.push_back(s);
  }
  // Whitespace control: explicit '-', then lstrip_blocks (judged on the original text) and
  // trim_blocks, as transformers configures Jinja.
  for (size_t k = 1; k < segs.size(); ++k) {
    const Seg& s = segs[k];
    if (s.kind == Seg::TextSeg || segs[k - 1].kind != Seg::TextSeg) continue;
    std::string& t = segs[k - 1].body;
    if (s.strip_before) {
      t.erase(t.find_last_not_of(" \t\n\r\v\f") + 1);
    } else if (s.kind != Seg::ExprSeg && !s.plus) {
      const size_t nl = t.find_last_of('\n');
      const size_t from = nl == std::string::npos ? 0 : nl + 1;
      if (t.find_first_not_of(" \t", from) == std::string::npos && (nl != std::string::npos || k - 1 == 0))
        t.erase(from);
    }
  }
  for (size_t k = 0; k + 1 < segs.size(); ++k) {
    const Seg& s = segs[k];
    if (s.kind == Seg::TextSeg || segs[k + 1].kind != Seg::TextSeg) continue;
    std::string& t = segs[k + 1].body;
    if (s.strip_after) {
      const size_t b = t.find_first_not_of(" \t\n\r\v\f");
      t.erase(0, b == std::string::npos ? t.size() : b);
    } else if (s.kind != Seg::ExprSeg) {
      if (t.compare(0, 1, "\n") == 0) t.erase(0, 1);
      else if (t.compare(0, 2, "\r\n") == 0) t.erase(0, 2);
    }
  }
  return segs;
}

struct Tok {
  enum Kind { NameT, StrT, IntT, FloatT, OpT, EndT } kind;
  std::string text;
  int line;
};

std::vector<Tok> tokenize(const std::string& s, int line) {
  std::vector<Tok> out;
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      line += c == '\n';
      ++i;
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
      out.push_back({Tok::NameT, s.substr(i, j - i), line});
      i = j;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      size_t j = i;
      bool is_float = false;
      while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
      if (j + 1 < s.size() && s[j] == '.' && std::isdigit(static_cast<unsigned char>(s[j + 1]))) {
        is_float = true;
        for (++j; j < s.size() && std::isdigit(static_cast<unsigned char>(s[j])); ++j) {}
      }
      if (j < s.size() && (s[j] == 'e' || s[j] == 'E')) {
        is_float = true;
        ++j;
        if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
        while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
      }
      std::string num = s.substr(i, j - i);
      num.erase(std::remove(num.begin(), num.end(), '_'), num.end());
      out.push_back({is_float ? Tok::FloatT : Tok::IntT, num, line});
      i = j;
    } else if (c == '\'' || c == '"') {
      std::string v;
      size_t j = i + 1;
      for (; j < s.size() && s[j] != c; ++j) {
        if (s[j] != '\\' || j + 1 >= s.size()) {
          v += s[j];
          continue;
        }
        const char e = s[++j];
        switch (e) {
          case 'n': v += '\n'; break;
          case 't': v += '\t'; break;
          case 'r': v += '\r'; break;
          case '0': v += '\0'; break;
          case '\\': v += '\\'; break;
          case '\'': v += '\''; break;
          case '"': v += '"'; break;
          case '\n': break;
          default: v += '\\', v += e;
        }
      }
      if (j >= s.size()) fail(line, "unterminated string literal");
      out.push_back({Tok::StrT, v, line});
      i = j + 1;
    } else {
      static const char* ops2[] = {"==", "!=", "<=", ">=", "//", "**"};
      std::string op(1, c);
      for (const char* o : ops2)
        if (s.compare(i, 2, o) == 0) op = o;
      if (op.size() == 1 && !std::strchr("+-*/%~<>=()[]{},.:|", c)) fail(line, std::string("unexpected character '") + c + "'");
      out.push_back({Tok::OpT, op, line});
      i += op.size();
    }
  }
  out.push_back({Tok::EndT, "", line});
  return out;
}

// ---- parsing ----------------------------------------------------------------------------------
NodeP make(Node::T t, int line) {
  auto n = std::make_shared<Node>();
  n->t = t;
  n->line = line;
  return n;
}

class ExprParser {
 public:
  ExprParser(std::vector<Tok> toks) : t_(std::move(toks)) {}
  const Tok& peek(size_t k = 0) const { return t_[std::min(p_ + k, t_.size() - 1)]; }
  bool at_end() const { return peek().kind == Tok::EndT; }
  bool is_op(const char* o, size_t k = 0) const { return peek(k).kind == Tok::OpT && peek(k).text == o; }
  bool is_name(const char* n, size_t k = 0) const { return peek(k).kind == Tok::NameT && peek(k).text == n; }
  Tok next() { return t_[std::min(p_++, t_.size() - 1)]; }
  void expect_op(const char* o) {
    if (!is_op(o)) fail(peek().line, std::string("expected '") + o + "', got '" + peek().text + "'");
    ++p_;
  }
  std::string expect_name() {
    if (peek().kind != Tok::NameT) fail(peek().line, "expected a name, got '" + peek().text + "'");
    return next().text;
  }
  void expect_end() {
    if (!at_end()) fail(peek().line, "unexpected '" + peek().text + "'");
  }

  NodeP expr() {
    NodeP a = or_expr();
    if (is_name("if")) {
      ++p_;
      auto n = make(Node::Cond, a->line);
      n->kids = {a, or_expr()};
      if (is_name("else")) {
        ++p_;
        n->kids.push_back(expr());
      }
      return n;
    }
    return a;
  }
  // expr (',' expr)* -> a List node when there is a comma (tuples).
  NodeP tuple_expr() {
    NodeP a = expr();
    if (!is_op(",")) return a;
    auto n = make(Node::List, a->line);
    n->kids.push_back(a);
    while (is_op(",")) {
      ++p_;
      if (at_end()) break;
      n->kids.push_back(expr());
    }
    return n;
  }

 private:
  NodeP or_expr() {
    NodeP a = and_expr();
    while (is_name("or")) {
      ++p_;
      auto n = make(Node::Or, a->line);
      n->kids = {a, and_expr()};
      a = n;
    }
    return a;
  }
  NodeP and_expr() {
    NodeP a = not_expr();
    while (is_name("and")) {
      ++p_;
      auto n = make(Node::And, a->line);
      n->kids = {a, not_expr()};
      a = n;
    }
    return a;
  }
  NodeP not_expr() {
    if (is_name("not")) {
      int line = next().line;
      auto n = make(Node::Not, line);
      n->kids = {not_expr()};
      return n;
    }
    return compare();
  }
  NodeP compare() {
    NodeP a = concat();
    for (;;) {
      std::string op;
      if (peek().kind == Tok::OpT && (is_op("==") || is_op("!=") || is_op("<") || is_op(">") || is_op("<=") || is_op(">="))) {
        op = next().text;
      } else if (is_name("in")) {
        ++p_;
        op = "in";
      } else if (is_name("not") && is_name("in", 1)) {
        p_ += 2;
        op = "not in";
      } else {
        return a;
      }
      auto n = make(Node::Binary, a->line);
      n->s = op;
      n->kids = {a, concat()};
      a = n;
    }
  }
  NodeP binary_chain(NodeP (ExprParser::*sub)(), std::initializer_list<const char*> ops) {
    NodeP a = (this->*sub)();
    for (;;) {
      const char* hit = nullptr;
      for (const char* o : ops)
        if (is_op(o)) hit = o;
      if (!hit) return a;
      ++p_;
      auto n = make(Node::Binary, a->line);
      n->s = std::string(hit);  // (not `= hit`: GCC 12 warns falsely with -Wrestrict)
      n->kids = {a, (this->*sub)()};
      a = n;
    }
  }
  NodeP concat() { return binary_chain(&ExprParser::math1, {"~"}); }
  NodeP math1() { return binary_chain(&ExprParser::math2, {"+", "-"}); }
  NodeP math2() { return binary_chain(&ExprParser::power, {"*", "/", "//", "%"}); }
  NodeP power() { return binary_chain(&ExprParser::unary, {"**"}); }
  NodeP unary() {
    if (is_op("-") || is_op("+")) {
      Tok op = next();
      auto n = make(Node::Unary, op.line);
      n->s = op.text;
      n->kids = {unary()};
      return n;
    }
    return filters(postfix(primary()));
  }
  void call_args(Node& n) {
    expect_op("(");
    while (!is_op(")")) {
      if (peek().kind == Tok::NameT && is_op("=", 1)) {
        std::string k = next().text;
        ++p_;
        n.kw.emplace_back(k, expr());
      } else {
        n.kids.push_back(expr());
      }
      if (!is_op(",")) break;
      ++p_;
    }
    expect_op(")");
  }
  NodeP postfix(NodeP a) {
    for (;;) {
      if (is_op(".")) {
        ++p_;
        auto n = make(Node::Attr, a->line);
        n->kids = {a};
        n->s = peek().kind == Tok::IntT ? next().text : expect_name();
        a = n;
      } else if (is_op("[")) {
        ++p_;
        NodeP parts[3];
        int k = 0;
        bool is_slice = false;
        while (!is_op("]")) {
          if (is_op(":")) {
            ++p_;
            is_slice = true;
            if (++k > 2) fail(peek().line, "bad slice");
            continue;
          }
          parts[k] = expr();
        }
        expect_op("]");
        auto n = make(is_slice ? Node::Slice : Node::Item, a->line);
        n->kids = {a, parts[0], parts[1], parts[2]};
        if (!is_slice && !parts[0]) fail(a->line, "empty subscript");
        a = n;
      } else if (is_op("(")) {
        auto n = make(Node::Call, a->line);
        n->kids = {a};
        call_args(*n);
        a = n;
      } else {
        return a;
      }
    }
  }
  NodeP filters(NodeP a) {
    for (;;) {
      if (is_op("|")) {
        ++p_;
        auto n = make(Node::Filter, a->line);
        n->s = expect_name();
        n->kids = {a};
        if (is_op("(")) call_args(*n);
        a = n;
      } else if (is_name("is")) {
        ++p_;
        auto n = make(Node::Test, a->line);
        if (is_name("not")) ++p_, n->neg = true;
        n->s = peek().kind == Tok::NameT ? next().text : next().text;  // "none", "==" style names
        n->kids = {a};
        if (is_op("(")) {
          call_args(*n);
        } else if (!at_end() && (peek().kind == Tok::StrT || peek().kind == Tok::IntT || peek().kind == Tok::FloatT ||
                                 (peek().kind == Tok::NameT && !is_name("and") && !is_name("or") && !is_name("else") &&
                                  !is_name("if") && !is_name("is")))) {
          n->kids.push_back(primary());  // `is divisibleby 3`
        }
        a = n;
      } else {
        return a;
      }
    }
  }
  NodeP primary() {
    Tok k = next();
    switch (k.kind) {
      case Tok::StrT: {
        std::string s = k.text;
        while (peek().kind == Tok::StrT) s += next().text;  // adjacent literals concatenate
        auto n = make(Node::Lit, k.line);
        n->lit = s;
        return n;
      }
      case Tok::IntT: {
        auto n = make(Node::Lit, k.line);
        int64_t v = 0;
        const auto [end, ec] = std::from_chars(k.text.data(), k.text.data() + k.text.size(), v);
        if (ec != std::errc() || end != k.text.data() + k.text.size())
          fail(k.line, "integer literal " + k.text + " does not fit in 64 bits");
        n->lit = v;
        return n;
      }
      case Tok::FloatT: {
        auto n = make(Node::Lit, k.line);
        n->lit = std::strtod(k.text.c_str(), nullptr);  // 1e999 is inf, as in Python
        return n;
      }
      case Tok::NameT: {
        auto n = make(Node::Lit, k.line);
        if (k.text == "true" || k.text == "True") n->lit = true;
        else if (k.text == "false" || k.text == "False") n->lit = false;
        else if (k.text == "none" || k.text == "None") n->lit = nullptr;
        else n->t = Node::Name, n->s = k.text;
        return n;
      }
      case Tok::OpT:
        if (k.text == "(") {
          if (is_op(")")) {
            ++p_;
            auto n = make(Node::List, k.line);
            return n;
          }
          NodeP e = tuple_expr();
          expect_op(")");
          return e;
        }
        if (k.text == "[") {
          auto n = make(Node::List, k.line);
          while (!is_op("]")) {
            n->kids.push_back(expr());
            if (!is_op(",")) break;
            ++p_;
          }
          expect_op("]");
          return n;
        }
        if (k.text == "{") {
          auto n = make(Node::Dict, k.line);
          while (!is_op("}")) {
            n->kids.push_back(expr());
            expect_op(":");
            n->kids.push_back(expr());
            if (!is_op(",")) break;
            ++p_;
          }
          expect_op("}");
          return n;
        }
        [[fallthrough]];
      default:
        fail(k.line, "unexpected '" + k.text + "' in expression");
    }
  }

  std::vector<Tok> t_;
  size_t p_ = 0;
};

class Parser {
 public:
  explicit Parser(std::vector<Seg> segs) : segs_(std::move(segs)) {}

  // Parses until a statement whose first word is in `ends`; returns that word ("" at the end).
  Body block(const std::vector<std::string>& ends, std::string* end_word, ExprParser** end_parser) {
    Body out;
    while (i_ < segs_.size()) {
      Seg& s = segs_[i_++];
      if (s.kind == Seg::CommentSeg) continue;
      if (s.kind == Seg::TextSeg) {
        if (s.body.empty()) continue;
        auto n = make(Node::Text, s.line);
        n->s = s.body;
        out.push_back(n);
        continue;
      }
      auto ep = std::make_unique<ExprParser>(tokenize(s.body, s.line));
      if (s.kind == Seg::ExprSeg) {
        auto n = make(Node::Output, s.line);
        n->kids = {ep->tuple_expr()};
        ep->expect_end();
        out.push_back(n);
        continue;
      }
      const std::string word = ep->expect_name();
      if (std::find(ends.begin(), ends.end(), word) != ends.end()) {
        *end_word = word;
        held_ = std::move(ep);
        *end_parser = held_.get();
        return out;
      }
      out.push_back(statement(word, *ep, s.line));
    }
    if (!ends.empty()) fail(segs_.empty() ? 0 : segs_.back().line, "missing {% " + ends.back() + " %}");
    *end_word = "";
    return out;
  }

 private:
  NodeP statement(const std::string& word, ExprParser& ep, int line) {
    std::string end;
    ExprParser* ender = nullptr;
    if (word == "if") {
      auto n = make(Node::If, line);
      n->kids.push_back(ep.expr());
      ep.expect_end();
      for (;;) {
        n->branches.push_back(block({"elif", "else", "endif"}, &end, &ender));
        if (end == "elif") {
          n->kids.push_back(ender->expr());
          ender->expect_end();
          continue;
        }
        if (end == "else") {
          ender->expect_end();
          n->else_body = block({"endif"}, &end, &ender);
        }
        return n;
      }
    }
    if (word == "for") {
      auto n = make(Node::For, line);
      n->names.push_back(ep.expect_name());
      while (ep.is_op(",")) {
        ep.next();
        n->names.push_back(ep.expect_name());
      }
      if (!ep.is_name("in")) fail(line, "expected 'in' in for loop");
      ep.next();
      n->kids.push_back(ep.expr());  // `if` here is a loop filter, not a conditional expression
      if (n->kids[0]->t == Node::Cond && n->kids[0]->kids.size() == 2) {
        NodeP c = n->kids[0];
        n->kids = {c->kids[0], c->kids[1]};
      }
      if (ep.is_name("recursive")) fail(line, "recursive loops are not supported");
      ep.expect_end();
      n->body = block({"else", "endfor"}, &end, &ender);
      if (end == "else") n->else_body = block({"endfor"}, &end, &ender);
      return n;
    }
    if (word == "set") {
      std::string target = ep.expect_name();
      if (ep.is_op(".")) {
        ep.next();
        target += "." + ep.expect_name();
      }
      std::vector<std::string> names{target};
      while (ep.is_op(",")) {
        ep.next();
        names.push_back(ep.expect_name());
      }
      if (ep.at_end()) {  // {% set x %}...{% endset %}
        auto n = make(Node::SetBlock, line);
        n->names = names;
        n->body = block({"endset"}, &end, &ender);
        return n;
      }
      ep.expect_op("=");
      auto n = make(Node::Set, line);
      n->names = names;
      n->kids = {ep.tuple_expr()};
      ep.expect_end();
      return n;
    }
    if (word == "macro") {
      auto n = make(Node::Macro, line);
      n->s = ep.expect_name();
      ep.expect_op("(");
      while (!ep.is_op(")")) {
        n->names.push_back(ep.expect_name());
        NodeP def;
        if (ep.is_op("=")) {
          ep.next();
          def = ep.expr();
        }
        n->kids.push_back(def);
        if (!ep.is_op(",")) break;
        ep.next();
      }
      ep.expect_op(")");
      ep.expect_end();
      n->body = block({"endmacro"}, &end, &ender);
      return n;
    }
    if (word == "break" || word == "continue") {
      ep.expect_end();
      return make(word == "break" ? Node::Break : Node::Continue, line);
    }
    if (word == "generation") {  // transformers' assistant-mask marker: renders its body
      ep.expect_end();
      auto n = make(Node::If, line);
      auto t = make(Node::Lit, line);
      t->lit = true;
      n->kids = {t};
      n->branches.push_back(block({"endgeneration"}, &end, &ender));
      return n;
    }
    fail(line, "unsupported tag '{% " + word + " %}'");
  }

  std::vector<Seg> segs_;
  size_t i_ = 0;
  std::unique_ptr<ExprParser> held_;
};

// ---- evaluation -------------------------------------------------------------------------------
enum class Flow { Normal, Break, Continue };

struct Context {
  std::vector<std::map<std::string, Value>> scopes;
  std::map<std::string, const Node*>* macros;

  Value lookup(const std::string& name) const {
    for (auto it = scopes.rbegin(); it != scopes.rend(); ++it) {
      auto f = it->find(name);
      if (f != it->end()) return f->second;
    }
    if (macros->count(name)) {
      Value v;
      v.kind = Value::Kind::Macro;
      v.name = name;
      return v;
    }
    if (is_function(name)) {
      Value v;
      v.kind = Value::Kind::Function;
      v.name = name;
      return v;
    }
    return Value();
  }
  Value* find(const std::string& name) {
    for (auto it = scopes.rbegin(); it != scopes.rend(); ++it) {
      auto f = it->find(name);
      if (f != it->end()) return &f->second;
    }
    return nullptr;
  }
  void set(const std::string& name, Value v) { scopes.back()[name] = std::move(v); }
};

Value eval(const Node& n, Context& c);
Flow exec(const Body& body, Context& c, std::string& out);

Args eval_args(const Node& n, Context& c, size_t first) {
  Args a;
  for (size_t i = first; i < n.kids.size(); ++i) a.pos.push_back(eval(*n.kids[i], c));
  for (auto& [k, e] : n.kw) a.kw.emplace_back(k, eval(*e, c));
  return a;
}

Value call_macro(const Node& m, const Args& a, Context& c) {
  Context mc{{c.scopes.front(), {}}, c.macros};
  for (size_t i = 0; i < m.names.size(); ++i) {
    const Value* v = a.get(i, m.names[i].c_str());
    if (v) mc.set(m.names[i], *v);
    else if (m.kids[i]) mc.set(m.names[i], eval(*m.kids[i], c));
    else mc.set(m.names[i], Value());
  }
  std::string out;
  exec(m.body, mc, out);
  return Value::of(out);
}

Value eval(const Node& n, Context& c) {
  switch (n.t) {
    case Node::Lit: return Value::of(n.lit);
    case Node::List: {
      ojson a = ojson::array();
      for (auto& k : n.kids) {
        Value v = eval(*k, c);
        a.push_back(v.undefined() ? ojson() : v.data);
      }
      return Value::of(a);
    }
    case Node::Dict: {
      ojson d = ojson::object();
      for (size_t i = 0; i + 1 < n.kids.size(); i += 2) {
        Value k = eval(*n.kids[i], c);
        d[to_str(k)] = eval(*n.kids[i + 1], c).data;
      }
      return Value::of(d);
    }
    case Node::Name: return c.lookup(n.s);
    case Node::Attr: return get_attr(eval(*n.kids[0], c), n.s);
    case Node::Item: return get_item(eval(*n.kids[0], c), eval(*n.kids[1], c), n.line);
    case Node::Slice: {
      auto opt = [&](const NodeP& p) { return p ? eval(*p, c) : Value(); };
      return slice(eval(*n.kids[0], c), opt(n.kids[1]), opt(n.kids[2]), opt(n.kids[3]), n.line);
    }
    case Node::Call: {
      Value f = eval(*n.kids[0], c);
      Args a = eval_args(n, c, 1);
      switch (f.kind) {
        case Value::Kind::Macro: return call_macro(*c.macros->at(f.name), a, c);
        case Value::Kind::Function: return call_function(f.name, a, n.line);
        case Value::Kind::Method: return call_method(Value::of(f.data), f.name, a, n.line);
        default: fail(n.line, "calling something that is not callable");
      }
    }
    case Node::Filter: return call_filter(n.s, eval(*n.kids[0], c), eval_args(n, c, 1), n.line);
    case Node::Test: {
      bool r = call_test(n.s, eval(*n.kids[0], c), eval_args(n, c, 1), n.line);
      return Value::of(n.neg ? !r : r);
    }
    case Node::Unary: {
      Value v = eval(*n.kids[0], c);
      return n.s == "-" ? binary_op("-", Value::of(0), v, n.line) : v;
    }
    case Node::Binary: {
      Value a = eval(*n.kids[0], c), b = eval(*n.kids[1], c);
      if (n.s == "in") return Value::of(contains(b, a, n.line));
      if (n.s == "not in") return Value::of(!contains(b, a, n.line));
      if (n.s == "==") return Value::of(values_equal(a, b));
      if (n.s == "!=") return Value::of(!values_equal(a, b));
      if (n.s == "<") return Value::of(compare_values(a, b, n.line) < 0);
      if (n.s == ">") return Value::of(compare_values(a, b, n.line) > 0);
      if (n.s == "<=") return Value::of(compare_values(a, b, n.line) <= 0);
      if (n.s == ">=") return Value::of(compare_values(a, b, n.line) >= 0);
      return binary_op(n.s, a, b, n.line);
    }
    case Node::And: {
      Value a = eval(*n.kids[0], c);
      return truthy(a) ? eval(*n.kids[1], c) : a;
    }
    case Node::Or: {
      Value a = eval(*n.kids[0], c);
      return truthy(a) ? a : eval(*n.kids[1], c);
    }
    case Node::Not: return Value::of(!truthy(eval(*n.kids[0], c)));
    case Node::Cond:
      if (truthy(eval(*n.kids[1], c))) return eval(*n.kids[0], c);
      return n.kids.size() > 2 ? eval(*n.kids[2], c) : Value();
    default: fail(n.line, "not an expression");
  }
}

void assign(const std::vector<std::string>& names, const Value& v, Context& c, int line) {
  if (names.size() == 1) {
    const std::string& t = names[0];
    const size_t dot = t.find('.');
    if (dot == std::string::npos) return c.set(t, v);
    Value* obj = c.find(t.substr(0, dot));
    if (!obj || obj->kind != Value::Kind::Data || !obj->data.is_object())
      fail(line, "cannot set attribute of '" + t.substr(0, dot) + "'");
    obj->data[t.substr(dot + 1)] = v.data;
    return;
  }
  std::vector<Value> items = iterate(v, line);
  if (items.size() != names.size()) fail(line, "cannot unpack " + std::to_string(items.size()) + " values into " +
                                                   std::to_string(names.size()) + " names");
  for (size_t i = 0; i < names.size(); ++i) c.set(names[i], items[i]);
}

Flow exec(const Body& body, Context& c, std::string& out) {
  for (const NodeP& np : body) {
    const Node& n = *np;
    switch (n.t) {
      case Node::Text: out += n.s; break;
      case Node::Output: out += to_str(eval(*n.kids[0], c)); break;
      case Node::If: {
        size_t i = 0;
        for (; i < n.kids.size(); ++i)
          if (truthy(eval(*n.kids[i], c))) break;
        const Body& b = i < n.kids.size() ? n.branches[i] : n.else_body;
        Flow f = exec(b, c, out);
        if (f != Flow::Normal) return f;
        break;
      }
      case Node::For: {
        std::vector<Value> items = iterate(eval(*n.kids[0], c), n.line);
        if (n.kids.size() > 1) {  // loop filter
          std::vector<Value> kept;
          for (auto& it : items) {
            c.scopes.emplace_back();
            assign(n.names, it, c, n.line);
            if (truthy(eval(*n.kids[1], c))) kept.push_back(it);
            c.scopes.pop_back();
          }
          items.swap(kept);
        }
        const int64_t len = int64_t(items.size());
        for (int64_t i = 0; i < len; ++i) {
          c.scopes.emplace_back();
          ojson loop = {{"index", i + 1}, {"index0", i}, {"first", i == 0}, {"last", i == len - 1}, {"length", len},
                        {"revindex", len - i}, {"revindex0", len - i - 1}};
          if (i > 0) loop["previtem"] = items[i - 1].data;
          if (i + 1 < len) loop["nextitem"] = items[i + 1].data;
          c.set("loop", Value::of(loop));
          assign(n.names, items[i], c, n.line);
          Flow f = exec(n.body, c, out);
          c.scopes.pop_back();
          if (f == Flow::Break) break;
        }
        if (len == 0) exec(n.else_body, c, out);
        break;
      }
      case Node::Set: assign(n.names, eval(*n.kids[0], c), c, n.line); break;
      case Node::SetBlock: {
        std::string s;
        exec(n.body, c, s);
        assign(n.names, Value::of(s), c, n.line);
        break;
      }
      case Node::Macro: (*c.macros)[n.s] = &n; break;
      case Node::Break: return Flow::Break;
      case Node::Continue: return Flow::Continue;
      default: fail(n.line, "not a statement");
    }
  }
  return Flow::Normal;
}
}  // namespace
}  // namespace jinja

JinjaTemplate::JinjaTemplate(const std::string& source, const std::string& name) : name_(name) {
  try {
    jinja::Parser p(jinja::split_segments(source));
    std::string end;
    jinja::ExprParser* ender = nullptr;
    root_ = std::make_shared<jinja::Node>();
    root_->t = jinja::Node::If;
    root_->body = p.block({}, &end, &ender);
  } catch (const Error& e) {
    throw Error(name_ + ": " + e.what());
  }
}

JinjaTemplate::~JinjaTemplate() = default;

std::string JinjaTemplate::render(const ojson& variables) const {
  std::map<std::string, const jinja::Node*> macros;
  jinja::Context c{{{}}, &macros};
  for (auto& [k, v] : variables.items()) c.set(k, jinja::Value::of(v));
  std::string out;
  try {
    jinja::exec(root_->body, c, out);
  } catch (const Error& e) {
    throw Error(name_ + ": " + e.what());
  } catch (const ojson::exception& e) {  // a value of a type the template did not expect
    throw Error(name_ + ": " + e.what());
  }
  return out;
}

}  // namespace forge::data
