// One exception type for every user-facing failure; the message says what was expected.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace forge {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace detail {
template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

}  // namespace forge

// FORGE_CHECK(cond, "message parts", value, ...): throws forge::Error with the parts joined.
#define FORGE_CHECK(cond, ...) \
  do {                         \
    if (!(cond)) throw ::forge::Error(::forge::detail::cat(__VA_ARGS__)); \
  } while (0)
