// Test helpers (see test_util.h).
#include "tests/support/test_util.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <unistd.h>

#include "data/make_tokenizer.h"
#include "models/presets.h"
#include "models/pretrained.h"

namespace forge::testing {

double rel_error(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    num = std::max(num, double(std::fabs(a[i] - b[i])));
    den = std::max(den, double(std::fabs(b[i])));
  }
  return a.size() == b.size() ? num / den : INFINITY;
}

double rel_error(const Tensor& got, const Tensor& want) {
  return rel_error(got.to_float_vector(), want.to_float_vector());
}

void make_tiny_model_dir(const std::string& dir, uint64_t seed, double init_std) {
  std::filesystem::create_directories(dir);
  models::ModelConfig c = models::preset_config("llama", "tiny");
  data::TokenizerFiles t = data::make_byte_level_tokenizer(c.vocab_size);
  data::save_tokenizer_files(t, dir);
  c.bos_token_id = t.bos_id;
  c.eos_token_ids = {t.eos_id, t.eot_id};
  models::CausalLM model(c);
  model.init_weights(init_std, seed);
  models::save_model(model, dir);
}

std::string fresh_temp_dir(const std::string& name) {
  // Per process: CTest may run tests of one suite in parallel processes (ctest -j).
  auto p = std::filesystem::temp_directory_path() / ("forge_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p.string();
}

std::string train_reference_dir(const std::string& name) {
  const char* o = std::getenv("FORGE_OPTIM_REFERENCE");
  return o ? (std::filesystem::path(o).parent_path() / name).string() : "";
}

int expect_lora_grads(const peft::LoraModel& lora, const std::map<std::string, Tensor>& ref, const std::string& prefix,
                      double tol) {
  int checked = 0;
  for (auto& [name, a] : lora.adapters)
    for (auto [which, t] : {std::pair{".lora_A.weight", a->A}, std::pair{".lora_B.weight", a->B}}) {
      EXPECT_TRUE(t.grad().defined()) << name << which;
      if (!t.grad().defined()) continue;
      EXPECT_LE(rel_error(t.grad(), ref.at(prefix + "grad/" + name + which)), tol) << prefix << name << which;
      ++checked;
    }
  return checked;
}

}  // namespace forge::testing
