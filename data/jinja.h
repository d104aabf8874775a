// A Jinja2 interpreter for the subset chat templates use: {{ }}, {% if/elif/else %},
// {% for %} (loop.*, filters, else, break/continue), {% set %} (incl. namespace attributes and
// blocks), {% macro %}, {% generation %}, comments, whitespace control (-, trim_blocks,
// lstrip_blocks as transformers sets them), Python-like values, filters, tests and methods.
// Anything else is an error naming the construct and line.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace forge::data {

using ojson = nlohmann::ordered_json;  // keeps key order, as Python dicts do

namespace jinja {
struct Node;
}

class JinjaTemplate {
 public:
  // Parses once; `name` appears in error messages.
  explicit JinjaTemplate(const std::string& source, const std::string& name = "template");
  ~JinjaTemplate();
  // Renders with the given variables (a JSON object). raise_exception(msg), range, namespace,
  // dict and strftime_now are available as functions.
  std::string render(const ojson& variables) const;

 private:
  std::string name_;
  std::shared_ptr<jinja::Node> root_;
};

}  // namespace forge::data
