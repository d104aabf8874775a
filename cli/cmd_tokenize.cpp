// `forge tokenize`: text on stdin -> token ids (JSON) on stdout, or the reverse with --decode.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "data/tokenizer.h"

namespace forge::cli {
using json = nlohmann::json;

int cmd_tokenize(const Args& args) {
  check_flags(args, {"--model=", "--no-special", "--jsonl", "--decode", "--skip-special"});
  if (has_flag(args, "--help")) {
    std::printf(
        "usage: forge tokenize --model DIR [--no-special] [--jsonl] [--decode [--skip-special]]\n\n"
        "Reads text on stdin and prints its token ids as one JSON array (with the special tokens the\n"
        "tokenizer's post-processor adds, unless --no-special). --jsonl: each input line is a JSON string\n"
        "and each output line the JSON array of its ids. --decode: reads a JSON array of ids (or, with\n"
        "--jsonl, one per line) and prints the text.\n");
    return 0;
  }
  const std::string dir = required_flag(args, "--model", "DIR");
  auto tok = data::Tokenizer::from_dir(dir);
  const bool special = !has_flag(args, "--no-special"), jsonl = has_flag(args, "--jsonl");
  const bool decode = has_flag(args, "--decode"), skip = has_flag(args, "--skip-special");

  auto parse = [](const std::string& text, size_t line) {
    try {
      return json::parse(text);
    } catch (const json::exception& e) {
      throw Error("stdin line " + std::to_string(line) + ": not valid JSON (" + e.what() + ")");
    }
  };
  auto ids_of = [&](const json& j, size_t line) {
    FORGE_CHECK(j.is_array(), "stdin line ", line, ": expected a JSON array of token ids");
    std::vector<int64_t> ids;
    for (auto& x : j) {
      FORGE_CHECK(x.is_number_integer(), "stdin line ", line, ": token ids must be integers, got ", x.dump());
      ids.push_back(x.get<int64_t>());
    }
    return ids;
  };
  if (!jsonl) {
    std::string in((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (decode) std::cout << tok->decode(ids_of(parse(in, 1), 1), skip);
    else std::cout << json(tok->encode(in, special)).dump() << "\n";
    return 0;
  }
  std::string line;
  for (size_t n = 1; std::getline(std::cin, line); ++n) {
    if (line.empty()) continue;
    json j = parse(line, n);
    if (decode) {
      std::cout << json(tok->decode(ids_of(j, n), skip)).dump() << "\n";
    } else {
      FORGE_CHECK(j.is_string(), "stdin line ", n, ": expected a JSON string");
      std::cout << json(tok->encode(j.get<std::string>(), special)).dump() << "\n";
    }
  }
  return 0;
}

}  // namespace forge::cli
