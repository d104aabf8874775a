// Gemma 3 4B-27B ship as Gemma3ForConditionalGeneration: a text model inside a multimodal
// checkpoint. Forge loads the text model from either weight layout transformers wrote, leaves the
// vision tower out, and saves the result as Gemma3ForCausalLM. The text weights come from the
// PyTorch oracle's gemma3_pattern model (tests/reference/llama_reference.py).
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <functional>

#include "core/autograd.h"
#include "core/file_util.h"
#include "core/hdf5_io.h"
#include "core/safetensors.h"
#include "models/pretrained.h"
#include "tests/support/test_util.h"

using namespace forge;

namespace {
std::string ref_dir() {
  const char* d = std::getenv("FORGE_LLAMA_REFERENCE");
  return d ? d : "";
}

// The oracle's Gemma 3 text model rewritten as a multimodal checkpoint: its config nested as
// text_config, its weights renamed by `rename`, plus two vision tensors.
std::string make_multimodal(const std::string& name, const std::function<std::string(const std::string&)>& rename) {
  const std::string src = ref_dir() + "/gemma3_pattern", dir = forge::testing::fresh_temp_dir(name);
  nlohmann::json text = read_json_file(src + "/config.json");
  const nlohmann::json eos = text["eos_token_id"];
  for (const char* k : {"architectures", "torch_dtype", "eos_token_id"}) text.erase(k);
  const nlohmann::json cfg = {{"architectures", {"Gemma3ForConditionalGeneration"}},
                              {"model_type", "gemma3"},
                              {"text_config", text},
                              {"vision_config", {{"model_type", "siglip_vision_model"}, {"hidden_size", 8}}},
                              {"eos_token_id", eos},
                              {"torch_dtype", "float32"}};
  std::ofstream(dir + "/config.json") << cfg.dump(2);
  WeightFiles files(src);
  NamedTensors tensors;
  for (const std::string& n : files.names()) tensors.emplace_back(rename(n), files.tensor(n));
  tensors.emplace_back("vision_tower.vision_model.embeddings.patch_embedding.weight", Tensor::ones({8, 3, 2, 2}));
  tensors.emplace_back("multi_modal_projector.mm_input_projection_weight", Tensor::ones({8, 64}));
  save_weights(dir, tensors);
  return dir;
}

std::string layout_450(const std::string& n) { return "language_model." + n; }  // transformers 4.50
std::string layout_452(const std::string& n) {                                   // 4.52 on
  return n.rfind("model.", 0) == 0 ? "model.language_model." + n.substr(6) : n;
}
}  // namespace

TEST(Gemma3Multimodal, TextModelLoadsFromBothLayoutsAndSavesAsGemma3ForCausalLM) {
  if (ref_dir().empty()) GTEST_SKIP() << "FORGE_LLAMA_REFERENCE not set (run through ctest)";
  const auto ref = load_hdf5(ref_dir() + "/llama_reference.h5");
  const Tensor ids = ref.at("gemma3_pattern/ids"), want = ref.at("gemma3_pattern/logits");
  NoGradGuard ng;
  for (auto rename : {layout_450, layout_452}) {
    const std::string dir = make_multimodal("gemma3_mm", rename);
    auto model = models::load_model(dir);
    EXPECT_EQ(model->config().architecture, "Gemma3ForCausalLM");
    EXPECT_EQ(model->config().eos_token_ids, (std::vector<int64_t>{1, 106})) << "from the top level";
    EXPECT_LE(forge::testing::rel_error(model->forward(ids), want), 1e-4);
    // Saved as the text model alone, which loads back with the same logits.
    const std::string out = forge::testing::fresh_temp_dir("gemma3_mm_saved");
    models::save_model(*model, out);
    EXPECT_EQ(read_json_file(out + "/config.json")["architectures"][0], "Gemma3ForCausalLM");
    EXPECT_LE(forge::testing::rel_error(models::load_model(out)->forward(ids), want), 1e-4);
  }
}

TEST(Gemma3Multimodal, MissingTextTensorsAreNamedAsTheCheckpointNamesThem) {
  if (ref_dir().empty()) GTEST_SKIP() << "FORGE_LLAMA_REFERENCE not set (run through ctest)";
  const std::string dir = make_multimodal("gemma3_mm_bad", [](const std::string& n) {
    return n == "model.norm.weight" ? std::string("language_model.model.final_norm.weight") : layout_450(n);
  });
  try {
    models::load_model(dir);
    ADD_FAILURE() << "loaded without its final norm";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("missing tensors: language_model.model.norm.weight"), std::string::npos) << m;
    EXPECT_NE(m.find("unexpected tensors: language_model.model.final_norm.weight"), std::string::npos) << m;
  }
}

// gemma-3-4b's text_config gives only what differs from Gemma3TextConfig's defaults.
TEST(Gemma3Multimodal, TextConfigTakesTransformersDefaults) {
  const nlohmann::json cfg = {
      {"architectures", {"Gemma3ForConditionalGeneration"}},
      {"model_type", "gemma3"},
      {"eos_token_id", {1, 106}},
      {"torch_dtype", "bfloat16"},
      {"text_config",
       {{"hidden_size", 2560}, {"intermediate_size", 10240}, {"model_type", "gemma3_text"},
        {"num_hidden_layers", 34}, {"rope_scaling", {{"factor", 8.0}, {"rope_type", "linear"}}},
        {"sliding_window", 1024}}}};
  const models::ModelConfig c = models::parse_config(cfg, "g/config.json");
  EXPECT_EQ(c.architecture, "Gemma3ForCausalLM");
  EXPECT_EQ(c.loaded_from, "Gemma3ForConditionalGeneration");
  EXPECT_EQ(c.vocab_size, 262208);
  EXPECT_EQ(c.num_attention_heads, 8);
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.head_dim, 256);
  EXPECT_EQ(c.query_pre_attn_scalar, 256);
  EXPECT_EQ(c.dtype, DType::BF16);
  EXPECT_TRUE(c.tie_word_embeddings && c.qk_norm && c.sandwich_norms && c.norm_unit_offset);
  EXPECT_EQ(c.rope_theta, 1e6);
  EXPECT_EQ(c.rope_local_theta, 1e4);
  EXPECT_EQ(c.rope_scaling.type, "linear");
  EXPECT_EQ(c.rope_scaling.factor, 8.0);
  int sliding = 0;
  for (int64_t i = 0; i < 34; ++i) sliding += c.window(i) == 1024;
  EXPECT_EQ(sliding, 34 - 5) << "every sixth layer (5, 11, ..., 29) is global";
  EXPECT_EQ(c.window(5), 0);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{1, 106}));
}
