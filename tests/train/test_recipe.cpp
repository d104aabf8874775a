// Recipe validation: every bad recipe is refused with the file, line and key, and a suggestion.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "train/recipe.h"
#include "tests/support/test_util.h"

using namespace forge;

namespace {
struct RecipeFixture : ::testing::Test {
  std::string dir;
  void SetUp() override {
    dir = forge::testing::fresh_temp_dir("recipe");
    std::filesystem::create_directories(dir + "/model");
    std::ofstream(dir + "/model/config.json") << "{}";
    std::ofstream(dir + "/data.jsonl") << "{\"text\": \"hi\"}\n";
  }
  std::string base() const {
    return "model:\n  path: " + dir + "/model\ndata:\n  path: " + dir + "/data.jsonl\noutput:\n  dir: " + dir + "/out\n";
  }
  // The error message of parsing text (with overrides), or "" when it parses.
  std::string error_of(const std::string& text, std::vector<std::string> overrides = {}) {
    try {
      train::parse_recipe(text, "r.yaml", overrides);
      return "";
    } catch (const Error& e) {
      return e.what();
    }
  }
};

#define EXPECT_HAS(haystack, needle) EXPECT_NE((haystack).find(needle), std::string::npos) << (haystack)

TEST_F(RecipeFixture, DefaultsAndOverrides) {
  train::Recipe r = train::parse_recipe(base() + "optim:\n  lr: 3e-4\npeft:\n  target_modules: [q_proj, v_proj]\n",
                                        "r.yaml", {"train.max_steps=50", "optim.name=sgd", "peft.use_rslora=true"});
  EXPECT_DOUBLE_EQ(r.optim.lr, 3e-4);
  EXPECT_EQ(r.optim.name, "sgd");
  EXPECT_EQ(r.train.max_steps, 50);
  EXPECT_TRUE(r.peft.use_rslora);
  EXPECT_EQ(r.peft.target_modules, (std::vector<std::string>{"q_proj", "v_proj"}));
  EXPECT_EQ(r.data.max_seq_len, 512);  // a default
  EXPECT_EQ(train::parse_recipe(base() + "peft: none\n", "r.yaml").peft.method, "none");
  EXPECT_EQ(train::parse_recipe(base(), "r.yaml", {"peft=none"}).peft.method, "none");
  EXPECT_EQ(train::parse_recipe(base(), "r.yaml", {"peft.target_modules=.*proj"}).peft.target_regex, ".*proj");
  // The resolved YAML parses back to the same recipe.
  train::Recipe back = train::parse_recipe(train::recipe_to_yaml(r), "resolved.yaml");
  EXPECT_EQ(train::recipe_to_yaml(back), train::recipe_to_yaml(r));
}

TEST_F(RecipeFixture, UnknownKeysNameTheLineAndSuggest) {
  std::string e = error_of(base() + "optim:\n  learning_rate: 1e-4\n");
  EXPECT_HAS(e, "r.yaml:8: unknown key 'optim.learning_rate'");
  e = error_of(base() + "optim:\n  lrr: 1e-4\n");
  EXPECT_HAS(e, "did you mean 'optim.lr'?");
  e = error_of(base() + "trian:\n  epochs: 2\n");
  EXPECT_HAS(e, "r.yaml:7: unknown section 'trian' (did you mean 'train'?)");
  e = error_of(base(), {"train.max_step=5"});
  EXPECT_HAS(e, "override 'train.max_step=5': unknown key 'train.max_step' (did you mean 'train.max_steps'?)");
  e = error_of(base(), {"lr"});
  EXPECT_HAS(e, "expected section.key=value");
  // Found by tests/fuzz/fuzz_recipe: a key that is a list or a mapping threw YAML's own exception.
  EXPECT_HAS(error_of(base() + "[train]: 1\n"), "r.yaml:7: a section name must be a plain word");
  EXPECT_HAS(error_of(base() + "train:\n  {a: 1}: 2\n"), "r.yaml:8: a key of section 'train' must be a plain word");
}

TEST_F(RecipeFixture, WrongTypesAndImpossibleValues) {
  EXPECT_HAS(error_of(base() + "optim:\n  lr: fast\n"), "r.yaml:8: key 'optim.lr': expected a number, got 'fast'");
  EXPECT_HAS(error_of(base() + "train:\n  batch_size: 2.5\n"), "key 'train.batch_size': expected an integer");
  EXPECT_HAS(error_of(base(), {"data.packing=maybe"}), "key 'data.packing': expected true or false, got 'maybe'");
  EXPECT_HAS(error_of(base() + "optim:\n  name: adam\n"), "'adam' is not one of adamw | sgd (did you mean 'adamw'?)");
  EXPECT_HAS(error_of(base() + "optim:\n  lr: -1\n"), "r.yaml:8: key 'optim.lr': must be positive");
  EXPECT_HAS(error_of(base(), {"train.grad_accum=0"}), "key 'train.grad_accum': must be at least 1");
  EXPECT_HAS(error_of(base(), {"peft.dropout=1.5"}), "key 'peft.dropout': must be in [0, 1)");
  EXPECT_HAS(error_of(base(), {"parallel.zero=4"}), "must be 0, 1, 2 or 3");
  EXPECT_HAS(error_of(base() + "optim: [1, 2]\n"), "section 'optim' must be a mapping");
  EXPECT_HAS(error_of("model:\n  path: [\n"), "r.yaml:");
  EXPECT_HAS(error_of("model:\n  path: " + dir + "\ndata:\n  path: x\n"), "key 'model.path': '" + dir + "' has no config.json");
  EXPECT_HAS(error_of(base(), {"data.path=" + dir + "/nope.jsonl"}), "key 'data.path': no such file");
  EXPECT_HAS(error_of(base(), {"output.dir="}), "key 'output.dir': required");
  EXPECT_HAS(error_of(base(), {"checkpoint.resume=sometimes"}), "expected auto, never or an existing checkpoint file");
}

TEST_F(RecipeFixture, DpoKeysAreChecked) {
  const std::vector<std::string> dpo = {"train.method=dpo"};
  auto with = [&](std::vector<std::string> o) {
    o.insert(o.begin(), dpo.begin(), dpo.end());
    return error_of(base(), o);
  };
  EXPECT_HAS(error_of(base(), {"train.method=ppo"}), "'ppo' is not one of sft | dpo");
  EXPECT_HAS(with({"dpo.beta=0"}), "key 'dpo.beta': must be positive");
  EXPECT_HAS(with({"dpo.loss_type=kto"}), "'kto' is not one of sigmoid | hinge | ipo | simpo");
  EXPECT_HAS(with({"dpo.label_smoothing=0.5"}), "key 'dpo.label_smoothing': must be in [0, 0.5)");
  EXPECT_HAS(with({"dpo.loss_type=hinge", "dpo.label_smoothing=0.1"}), "applies to loss_type sigmoid or simpo, not hinge");
  EXPECT_HAS(with({"dpo.rpo_alpha=-1"}), "key 'dpo.rpo_alpha': must not be negative");
  EXPECT_HAS(with({"data.format=chat"}), "train.method dpo reads preference pairs (format auto or preference), not chat");
  EXPECT_HAS(with({"data.train_on_prompt=true"}), "DPO compares the replies only");
  EXPECT_HAS(with({"data.long_examples=split"}), "never split into windows");
  EXPECT_HAS(error_of(base(), {"data.format=preference"}), "preference pairs train with train.method: dpo");
}

}  // namespace
