// Jinja: a fuzzed template parsed and rendered over fixed messages, tools and specials, as a chat
// template is. Errors must be forge::Error naming the construct; loops and recursion must end.
#include "data/jinja.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace forge;
  static const data::ojson vars = data::ojson::parse(R"({
    "messages": [{"role": "system", "content": "Be brief."},
                 {"role": "user", "content": "Hi <b>there</b>"},
                 {"role": "assistant", "content": "Hello!", "tool_calls": [{"type": "function",
                   "function": {"name": "f", "arguments": {"x": 1, "y": [1, 2.5, "z"]}}}]},
                 {"role": "tool", "content": "{\"ok\": true}"},
                 {"role": "user", "content": [{"type": "text", "text": "part"}, {"type": "image"}]}],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    "bos_token": "<s>", "eos_token": "</s>", "add_generation_prompt": true, "n": 3, "none": null})");
  fuzz::expect_clean_error([&] {
    data::JinjaTemplate t(std::string(fuzz::as_text(data, size)), "fuzzed.jinja");
    (void)t.render(vars);
  });
  return 0;
}
