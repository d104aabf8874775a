// Chat-template parity with Python jinja2 (as transformers configures it) on the real templates of
// Llama 3, Qwen3 and Gemma 3 and on Llama 2, Mistral, ChatML, Phi-3, Llama 3.1 and a template
// that exercises the rest of the supported Jinja subset (tests/reference/template_reference.py).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "core/error.h"
#include "core/file_util.h"
#include "data/chat_template.h"
#include "data/dataset.h"
#include "data/jinja.h"
#include "tests/support/test_util.h"

using namespace forge;
using data::ojson;

namespace {
const ojson& reference() {
  static ojson j = [] {
    const char* d = std::getenv("FORGE_REFERENCE_DIR");
    return d ? ojson::parse(read_text_file(std::string(d) + "/template_reference.json")) : ojson();
  }();
  return j;
}
}  // namespace

TEST(ChatTemplate, RendersByteIdenticallyToJinja2) {
  if (reference().is_null()) GTEST_SKIP() << "FORGE_REFERENCE_DIR not set (run through ctest)";
  int checked = 0;
  for (auto& t : reference()) {
    const std::string name = t["name"];
    data::JinjaTemplate tpl(t["template"].get<std::string>(), name);
    for (auto& c : t["cases"]) {
      ojson vars = {{"messages", c["messages"]}, {"add_generation_prompt", c["add_generation_prompt"]}};
      if (c.contains("tools")) vars["tools"] = c["tools"];
      for (auto& [k, v] : t["tokens"].items())
        if (!v.is_null()) vars[k] = v;
      if (c.contains("error")) {
        EXPECT_THROW(tpl.render(vars), Error) << name << " should fail like jinja2: " << c["error"];
        continue;
      }
      std::string got;
      try {
        got = tpl.render(vars);
      } catch (const Error& e) {
        ADD_FAILURE() << name << ": " << e.what() << "\nmessages " << c["messages"].dump();
        continue;
      }
      EXPECT_EQ(got, c["output"].get<std::string>()) << name << " with messages " << c["messages"].dump();
      ++checked;
    }
  }
  EXPECT_GT(checked, 100);
}

TEST(ChatTemplate, ApplyChatTemplateUsesTheTokenizersTemplateAndTokens) {
  if (reference().is_null()) GTEST_SKIP() << "FORGE_REFERENCE_DIR not set (run through ctest)";
  for (auto& t : reference()) {
    if (t["tokenizer_dir"].is_null()) continue;
    auto tok = data::Tokenizer::from_dir(t["tokenizer_dir"].get<std::string>());
    const ojson& c = t["cases"][3];  // system + multi-turn, generation prompt off
    ASSERT_TRUE(c.contains("output")) << t["name"];
    EXPECT_EQ(data::apply_chat_template(*tok, c["messages"], c["add_generation_prompt"].get<bool>()),
              c["output"].get<std::string>())
        << t["name"];
  }
}

// Multi-turn training rows on the real Llama 3, Qwen3 and Gemma 3 templates, 2-5 turns, with and
// without reasoning: the targets are exactly each assistant turn as jinja2 renders the whole
// conversation (its content, plus Qwen3's reasoning block where the template shows one, plus the
// end-of-turn tokens), and the tokens decode to that rendering. Qwen3's template rewrites earlier
// turns once a later one exists (it drops their reasoning), so those rows need the whole-rendering
// path; the others keep the incremental one.
TEST(ChatTraining, TargetsAreTheAssistantTurnsAsTheWholeConversationShowsThem) {
  if (reference().is_null()) GTEST_SKIP() << "FORGE_REFERENCE_DIR not set (run through ctest)";
  int checked = 0;
  for (auto& t : reference()) {
    if (!t.contains("training")) continue;
    auto tok = data::Tokenizer::from_dir(t["tokenizer_dir"].get<std::string>());
    for (auto& c : t["training"]) {
      std::vector<int64_t> ids;
      std::vector<uint8_t> mask;
      data::tokenize_example(ojson{{"messages", c["messages"]}}, "chat", *tok, false, ids, mask);
      EXPECT_EQ(tok->decode(ids, false, false), c["text"].get<std::string>()) << t["name"];
      std::vector<std::string> targets;
      for (size_t b = 0; b < ids.size();) {
        size_t e = b;
        while (e < ids.size() && mask[e] == mask[b]) ++e;
        if (mask[b]) targets.push_back(tok->decode(std::vector<int64_t>(ids.begin() + long(b), ids.begin() + long(e)), false, false));
        b = e;
      }
      EXPECT_EQ(targets, c["targets"].get<std::vector<std::string>>()) << t["name"] << " " << c["messages"].dump();
      ++checked;
    }
  }
  EXPECT_EQ(checked, 12);  // 3 templates x 4 conversations
}

TEST(ChatTemplate, UnsupportedConstructsAreNamed) {
  auto err = [](const std::string& src) {
    try {
      data::JinjaTemplate t(src, "t");
      t.render({{"x", 1}});
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(err("{% include 'x' %}").find("unsupported tag '{% include %}'"), std::string::npos);
  EXPECT_NE(err("{{ x | frobnicate }}").find("unsupported filter '|frobnicate'"), std::string::npos);
  EXPECT_NE(err("{{ x is prime }}").find("unsupported test 'is prime'"), std::string::npos);
  EXPECT_NE(err("line1\n{% if x %}unclosed").find("missing {% endif %}"), std::string::npos);
  EXPECT_NE(err("{{ raise_exception('nope') }}").find("nope"), std::string::npos);
  EXPECT_NE(err("\n\n{{ 'abc'.zap() }}").find("line 3"), std::string::npos);
  // Found by tests/fuzz/fuzz_jinja_template: each was a crash, a std::out_of_range or unbounded.
  EXPECT_NE(err("{{ 99999999999999999999 }}").find("does not fit in 64 bits"), std::string::npos);
  EXPECT_NE(err("{{ 9223372036854775807 + 1 }}").find("does not fit in 64 bits"), std::string::npos);
  EXPECT_NE(err("{{ 4 is divisibleby 0 }}").find("division by zero"), std::string::npos);
  EXPECT_NE(err("{{ range(1000000) | length }}").find("too big"), std::string::npos);
  EXPECT_NE(err("{{ 'ab' * 100000000 }}").find("would be longer"), std::string::npos);
  EXPECT_EQ(err("{{ range(3) | list }}{{ 1e999 }}{{ 9 is divisibleby -1 }}"), "");
}

// transformers' continue_final_message: the rendering is cut right after the final message's
// content, keeping its trailing whitespace only where the template kept it.
TEST(ChatTemplate, ContinueFinalMessageCutsAfterTheLastContent) {
  const std::string kept = "<|im_start|>user\nThe answer is?<|im_end|>\n<|im_start|>assistant\nThe answer is <|im_end|>\n";
  EXPECT_EQ(data::continue_final_message(kept, "The answer is "),
            "<|im_start|>user\nThe answer is?<|im_end|>\n<|im_start|>assistant\nThe answer is ");
  const std::string stripped = "[INST] hi [/INST] Sure,</s>";
  EXPECT_EQ(data::continue_final_message(stripped, " Sure, \n"), "[INST] hi [/INST] Sure,");
  EXPECT_THROW(data::continue_final_message(kept, "not there"), Error);
  EXPECT_THROW(data::continue_final_message(kept, " \n"), Error);  // nothing to continue
}

// Where a model's template comes from: chat_template.jinja beside the tokenizer wins over
// tokenizer_config.json's (as transformers reads them), and --chat-template over both.
TEST(ChatTemplate, TemplateFileAndOverride) {
  if (reference().is_null()) GTEST_SKIP() << "FORGE_REFERENCE_DIR not set (run through ctest)";
  std::string src;
  for (auto& t : reference())
    if (!t["tokenizer_dir"].is_null()) src = t["tokenizer_dir"].get<std::string>();
  ASSERT_FALSE(src.empty());
  const std::string dir = forge::testing::fresh_temp_dir("forge_template_file");
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
    if (file_exists(src + "/" + f)) write_file_atomic(dir + "/" + f, read_text_file(src + "/" + f));
  const std::string chatml =
      "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
      "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
  write_file_atomic(dir + "/chat_template.jinja", chatml);
  auto tok = data::Tokenizer::from_dir(dir);
  EXPECT_EQ(tok->chat_template(), chatml);
  const ojson hi = ojson::parse(R"([{"role": "user", "content": "hi"}])");
  EXPECT_EQ(data::apply_chat_template(*tok, hi, true), "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  data::override_chat_template(*tok, "{{ messages[0].content }}!");  // written inline
  EXPECT_EQ(data::apply_chat_template(*tok, hi, true), "hi!");
  data::override_chat_template(*tok, dir + "/chat_template.jinja");  // a file
  EXPECT_EQ(tok->chat_template(), chatml);
  EXPECT_THROW(data::override_chat_template(*tok, dir + "/nope.jinja"), Error);
  std::filesystem::remove_all(dir);
}
