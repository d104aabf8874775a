// `forge template`: renders the model's chat template for a conversation read on stdin, as
// transformers' apply_chat_template(tokenize=False) does.
#include <cstdio>
#include <iostream>
#include <iterator>

#include "cli/commands.h"
#include "core/error.h"
#include "data/chat_template.h"

namespace forge::cli {

int cmd_template(const Args& args) {
  check_flags(args, {"--model=", "--chat-template="});
  if (has_flag(args, "--help")) {
    std::printf(
        "usage: forge template --model DIR [--chat-template FILE|TEMPLATE] < conversation.json\n\n"
        "stdin: {\"messages\": [{\"role\": \"user\", \"content\": \"...\"}, ...], \"add_generation_prompt\": true}\n"
        "(other keys, e.g. \"tools\", are passed to the template). Prints the rendered text, nothing added.\n"
        "The model's template (chat_template.jinja, else tokenizer_config.json's) or --chat-template's.\n");
    return 0;
  }
  const std::string dir = required_flag(args, "--model", "DIR");
  auto tok = data::Tokenizer::from_dir(dir);
  data::override_chat_template(*tok, flag_value(args, "--chat-template", ""));
  std::string in((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  data::ojson req;
  try {
    req = data::ojson::parse(in);
  } catch (const std::exception& e) {
    throw Error(std::string("stdin: not valid JSON (") + e.what() + ")");
  }
  FORGE_CHECK(req.is_object() && req.contains("messages") && req["messages"].is_array(),
              "stdin: expected an object with a \"messages\" array");
  const bool gen = req.value("add_generation_prompt", false);
  data::ojson extra = req;
  extra.erase("messages");
  extra.erase("add_generation_prompt");
  std::fputs(data::apply_chat_template(*tok, req["messages"], gen, extra).c_str(), stdout);
  return 0;
}

}  // namespace forge::cli
