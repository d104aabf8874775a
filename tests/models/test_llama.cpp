// Llama / Mistral / Qwen2 / Qwen3 / Gemma 1-3 parity with the PyTorch oracle
// (tests/reference/llama_reference.py): logits over a batch of prompts, 64 greedy steps with the KV
// cache, the bf16 path, and save/load round trips of HF directories.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/autograd.h"
#include "core/file_util.h"
#include "core/hdf5_io.h"
#include "core/safetensors.h"
#include "infer/generate.h"
#include "kernels/cpu/packed_gemm.h"
#include "models/pretrained.h"
#include "tests/support/test_util.h"

using namespace forge;
namespace fs = std::filesystem;

namespace {
std::string ref_dir() {
  const char* d = std::getenv("FORGE_LLAMA_REFERENCE");
  return d ? d : "";
}
const char* kVariants[] = {"llama_gqa_llama3rope", "llama_tied_linear",    "qwen2_bias",
                           "mistral_gqa",          "mistral_nemo_headdim", "llama32_tied_llama3rope",
                           "qwen3_qknorm",         "mistral_window",       "qwen2_window_layers",
                           "qwen3_layer_types",    "gemma_geglu",          "gemma2_softcap",
                           "gemma3_pattern",       "gemma3_rope_parameters", "qwen3_yarn",
                           "smollm3_nope",         "phi3_fused_window",    "phi4mini_longrope",
                           "phi3_longrope_long"};

using forge::testing::rel_error;

class LlamaParity : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (ref_dir().empty()) GTEST_SKIP() << "FORGE_LLAMA_REFERENCE not set (run through ctest)";
    ref = load_hdf5(ref_dir() + "/llama_reference.h5");
    dir = ref_dir() + "/" + GetParam();
  }
  Tensor get(const std::string& key) { return ref.at(std::string(GetParam()) + "/" + key); }
  std::map<std::string, Tensor> ref;
  std::string dir;
};
}  // namespace

TEST_P(LlamaParity, LogitsMatchPyTorchInF32) {
  auto model = models::load_model(dir);
  NoGradGuard ng;
  Tensor logits = model->forward(get("ids"));
  Tensor want = get("logits");
  ASSERT_EQ(logits.shape(), want.shape());
  double err = rel_error(logits.to_float_vector(), want.to_float_vector());
  EXPECT_LE(err, 1e-4) << GetParam();
}

TEST_P(LlamaParity, CachedPrefillAndDecodeMatchFullForward) {
  auto model = models::load_model(dir);
  NoGradGuard ng;
  Tensor ids = get("ids").narrow(0, 0, 1);  // [1, 40]
  Tensor full = model->forward(ids);        // [1, 40, V]
  models::KVCache cache = models::KVCache::create(model->config(), 1, 64, DType::F32);
  models::ForwardOptions fo;
  fo.cache = &cache;
  Tensor a = model->forward(ids.narrow(1, 0, 25), fo);  // chunked prefill: 25 + 10 + 5 x 1
  Tensor b = model->forward(ids.narrow(1, 25, 10), fo);
  std::vector<Tensor> parts{a, b};
  for (int t = 35; t < 40; ++t) parts.push_back(model->forward(ids.narrow(1, t, 1), fo));
  EXPECT_LE(rel_error(cat(parts, 1).to_float_vector(), full.to_float_vector()), 1e-5);
}

TEST_P(LlamaParity, GreedyGenerationGivesTheSame64Tokens) {
  auto model = models::load_model(dir);
  infer::GenerateOptions opt;
  opt.max_new_tokens = 64;
  opt.sampling.temperature = 0;
  auto res = infer::generate(*model, get("prompt").to_vector<int64_t>(), opt);
  EXPECT_EQ(res.tokens, get("greedy").to_vector<int64_t>());
}

TEST_P(LlamaParity, GenerationStopsAfterAStopIdAndStreamsEveryToken) {
  auto model = models::load_model(dir);
  std::vector<int64_t> greedy = get("greedy").to_vector<int64_t>();
  infer::GenerateOptions opt;
  opt.max_new_tokens = 64;
  opt.sampling.temperature = 0;
  opt.stop_ids = {999999, greedy[5]};  // e.g. Llama 3's <|end_of_text|> and <|eot_id|>
  std::vector<int64_t> streamed;
  opt.on_token = [&](int64_t t) {
    streamed.push_back(t);
    return true;
  };
  auto res = infer::generate(*model, get("prompt").to_vector<int64_t>(), opt);
  const size_t first = size_t(std::find(greedy.begin(), greedy.end(), greedy[5]) - greedy.begin());
  EXPECT_EQ(res.tokens, std::vector<int64_t>(greedy.begin(), greedy.begin() + first + 1));
  EXPECT_EQ(res.finish_reason, "stop");
  EXPECT_EQ(streamed, res.tokens);
}

TEST_P(LlamaParity, Bf16LogitsWithinBf16Tolerance) {
  auto model = models::load_model(dir, DType::BF16);
  EXPECT_EQ(model->lm_head_weight().dtype(), DType::BF16);
  NoGradGuard ng;
  Tensor logits = model->forward(get("ids"));
  EXPECT_EQ(logits.dtype(), DType::BF16);
  double err = rel_error(logits.to_float_vector(), get("logits").to_float_vector());
  EXPECT_LE(err, 4e-2) << GetParam();
  EXPECT_GT(err, 0.0);  // it really ran in bf16
}

TEST_P(LlamaParity, SaveLoadResaveIsByteIdentical) {
  auto model = models::load_model(dir);
  fs::path out = fs::temp_directory_path() / (std::string("forge_resave_") + GetParam());
  fs::remove_all(out);
  models::save_model(*model, (out / "a").string());
  auto again = models::load_model((out / "a").string());
  models::save_model(*again, (out / "b").string());
  EXPECT_EQ(read_text_file((out / "a/model.safetensors").string()), read_text_file((out / "b/model.safetensors").string()));
  EXPECT_EQ(read_text_file((out / "a/config.json").string()), read_text_file((out / "b/config.json").string()));
  // Sharded: several files plus an index, same tensors.
  models::save_model(*model, (out / "sharded").string(), 64 * 1024);
  EXPECT_TRUE(fs::exists(out / "sharded/model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(out / "sharded/model.safetensors"));
  auto sharded = models::load_model((out / "sharded").string());
  for (auto& [name, p] : model->named_parameters())
    EXPECT_EQ(p.to_float_vector(), sharded->parameter(name).to_float_vector()) << name;
  fs::remove_all(out);
}

TEST_P(LlamaParity, ColumnMajorWeightsForServingKeepLogitsAndSavedFiles) {
  auto model = models::load_model(dir);
  model->store_weights_transposed();  // what the serving engine does on the CPU
  for (auto& [name, m] : model->named_modules())
    if (auto lin = std::dynamic_pointer_cast<nn::Linear>(m)) {
      EXPECT_EQ(lin->weight.stride(0), 1) << name;
    }
  EXPECT_EQ(model->lm_head_weight().stride(0), 1) << "the LM head (the embedding when tied)";
  NoGradGuard ng;
  EXPECT_LE(rel_error(model->forward(get("ids")).to_float_vector(), get("logits").to_float_vector()), 1e-4);
  // Saving writes the same bytes as the row-major model.
  fs::path out = fs::temp_directory_path() / (std::string("forge_colmajor_") + GetParam());
  fs::remove_all(out);
  models::save_model(*models::load_model(dir), (out / "a").string());
  models::save_model(*model, (out / "b").string());
  EXPECT_EQ(read_text_file((out / "a/model.safetensors").string()), read_text_file((out / "b/model.safetensors").string()));
  fs::remove_all(out);
  auto bf16_model = models::load_model(dir, DType::BF16);
  bf16_model->store_weights_transposed();
  EXPECT_EQ(bf16_model->lm_head_weight().stride(1), 1) << "bf16 weights stay row-major (no gain measured)";
}

TEST_P(LlamaParity, PackedWeightsForDecodeKeepLogits) {
  auto model = models::load_model(dir);
  model->store_weights_transposed();  // what the serving engine does on the CPU
  model->pack_for_decode();
  for (auto& [name, m] : model->named_modules())
    if (auto lin = std::dynamic_pointer_cast<nn::Linear>(m)) {
      EXPECT_TRUE(lin->packed.defined()) << name;
    }
  NoGradGuard ng;
  // One sequence of 40 tokens: 40 rows, within the packed path's limit, through every layer and
  // the LM head (tied or not).
  const Tensor ids = get("ids").narrow(0, 0, 1), want = get("logits").narrow(0, 0, 1);
  EXPECT_LE(rel_error(model->forward(ids).to_float_vector(), want.contiguous().to_float_vector()), 1e-4);
  // bf16: packed where the CPU kernel has AVX512-BF16; logits within bf16 tolerance of PyTorch's
  // and close to the unpacked bf16 model's (another order of f32 sums, rounded to bf16).
  auto bf16_model = models::load_model(dir, DType::BF16);
  const Tensor unpacked = bf16_model->forward(ids);
  bf16_model->pack_for_decode();
  for (auto& [name, m] : bf16_model->named_modules())
    if (auto lin = std::dynamic_pointer_cast<nn::Linear>(m)) {
      EXPECT_EQ(lin->packed.defined(), cpu::packed_bf16_fast()) << name << " (bf16)";
    }
  const Tensor packed = bf16_model->forward(ids);
  EXPECT_EQ(packed.dtype(), DType::BF16);
  EXPECT_LE(rel_error(packed.to_float_vector(), want.contiguous().to_float_vector()), 4e-2);
  EXPECT_LE(rel_error(packed.to_float_vector(), unpacked.to_float_vector()), 4e-2);
}

INSTANTIATE_TEST_SUITE_P(Variants, LlamaParity, ::testing::ValuesIn(kVariants));

TEST(LlamaWeights, MissingUnexpectedAndMisshapedTensorsAreNamed) {
  if (ref_dir().empty()) GTEST_SKIP() << "FORGE_LLAMA_REFERENCE not set";
  auto model = models::load_model(ref_dir() + "/mistral_gqa");
  fs::path out = fs::temp_directory_path() / "forge_bad_weights";
  fs::remove_all(out);
  models::save_model(*model, out.string());
  NamedTensors t;
  for (auto& [name, p] : model->named_parameters()) {
    if (name == "model.norm.weight") continue;  // missing
    if (name == "model.layers.0.mlp.up_proj.weight") t.emplace_back(name, Tensor::zeros({3, 3}));  // mis-shaped
    else t.emplace_back(name == "lm_head.weight" ? "lm_head.weights" : name, p);  // unexpected + missing
  }
  save_weights(out.string(), t);
  try {
    models::load_model(out.string());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("missing tensors: "), std::string::npos) << m;
    EXPECT_NE(m.find("model.norm.weight"), std::string::npos) << m;
    EXPECT_NE(m.find("lm_head.weight"), std::string::npos) << m;
    EXPECT_NE(m.find("unexpected tensors: lm_head.weights"), std::string::npos) << m;
    EXPECT_NE(m.find("model.layers.0.mlp.up_proj.weight [3, 3]"), std::string::npos) << m;
  }
  fs::remove_all(out);
}

TEST(LlamaConfig, UnsupportedArchitectureAndValuesAreNamed) {
  nlohmann::json j = {{"architectures", {"GPT2LMHeadModel"}}};
  EXPECT_THROW(
      {
        try {
          models::parse_config(j, "x/config.json");
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("'GPT2LMHeadModel' is not supported"), std::string::npos);
          throw;
        }
      },
      Error);
  nlohmann::json ok = {{"architectures", {"LlamaForCausalLM"}}, {"hidden_size", 64}, {"intermediate_size", 128},
                       {"num_hidden_layers", 1}, {"num_attention_heads", 4}, {"vocab_size", 10}};
  auto c = models::parse_config(ok);
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_EQ(c.head_dim, 16);
  auto bad = ok;
  bad["rope_scaling"] = {{"type", "dynamic"}, {"factor", 4.0}};
  EXPECT_THROW(models::parse_config(bad), Error);
  bad = ok;
  bad["num_key_value_heads"] = 3;
  EXPECT_THROW(models::parse_config(bad), Error);
  bad = ok;
  bad["hidden_act"] = "gelu";
  EXPECT_THROW(models::parse_config(bad), Error);
  bad = ok;
  bad.erase("vocab_size");
  EXPECT_THROW(models::parse_config(bad), Error);
  auto round = models::parse_config(models::config_to_json(c));
  EXPECT_EQ(round.hidden_size, 64);
}

// Each problem a config can have is one error naming the file and the field (registry errors list
// the architectures Forge builds).
TEST(ModelConfig, BadConfigsAreNamed) {
  const nlohmann::json ok = {{"architectures", {"Qwen3ForCausalLM"}}, {"hidden_size", 64}, {"intermediate_size", 128},
                             {"num_hidden_layers", 1}, {"num_attention_heads", 4}, {"vocab_size", 10},
                             {"head_dim", 32}};
  const models::ModelConfig c = models::parse_config(ok, "q/config.json");
  EXPECT_TRUE(c.qk_norm);
  EXPECT_EQ(c.head_dim, 32);
  EXPECT_EQ(c.q_dim(), 128);
  EXPECT_EQ(c.model_type, "qwen3");
  const models::ModelConfig round = models::parse_config(models::config_to_json(c), "round");
  EXPECT_TRUE(round.qk_norm && round.architecture == "Qwen3ForCausalLM" && round.head_dim == 32);
  auto error_of = [](const nlohmann::json& j) {
    try {
      models::parse_config(j, "q/config.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  auto without = [&](const char* key) {
    nlohmann::json j = ok;
    j.erase(key);
    return j;
  };
  auto with = [&](const char* key, const nlohmann::json& v) {
    nlohmann::json j = ok;
    j[key] = v;
    return j;
  };
  const std::pair<nlohmann::json, std::string> cases[] = {
      {without("architectures"), "q/config.json: no 'architectures' list naming the model class"},
      {with("architectures", {"FalconForCausalLM"}),
       "q/config.json: architecture 'FalconForCausalLM' is not supported (supported: LlamaForCausalLM, "
       "MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, GemmaForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM, "
       "SmolLM3ForCausalLM, Phi3ForCausalLM, Gemma3ForConditionalGeneration (its text model))"},
      {without("num_hidden_layers"), "q/config.json: missing required field 'num_hidden_layers'"},
      {with("layer_types", {"full_attention", "full_attention"}),
       "q/config.json: 'layer_types' must list one type per layer (1), got [\"full_attention\",\"full_attention\"]"},
      {with("layer_types", {"chunked_attention"}),
       "q/config.json: layer_types entry \"chunked_attention\" is not supported (full_attention, sliding_attention are)"},
      {with("hidden_act", "gelu"), "q/config.json: hidden_act 'gelu' is not supported"},
      {with("attention_bias", "yes"), "q/config.json: 'attention_bias' must be true or false"},
  };
  for (auto& [j, want] : cases) EXPECT_NE(error_of(j).find(want), std::string::npos) << error_of(j);
}

// Weights named for another architecture: a Llama checkpoint under a Qwen3 config lacks the
// QK-norm tensors, and the error names them all at once.
TEST(ModelConfig, WeightsOfAnotherArchitectureAreNamed) {
  const std::string dir = forge::testing::fresh_temp_dir("forge_wrong_arch");
  forge::testing::make_tiny_model_dir(dir, 3, 0.1);
  nlohmann::json cfg = read_json_file(dir + "/config.json");
  cfg["architectures"] = {"Qwen3ForCausalLM"};
  cfg["model_type"] = "qwen3";
  std::ofstream(dir + "/config.json") << cfg.dump();
  try {
    models::load_model(dir);
    ADD_FAILURE() << "a Llama checkpoint loaded as Qwen3";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("weights do not match config.json: missing tensors: model.layers.0.self_attn.q_norm.weight, "
                     "model.layers.0.self_attn.k_norm.weight"),
              std::string::npos) << m;
  }
  fs::remove_all(dir);
}

// The sampling a model's creator recommends: read from generation_config.json as vLLM reads it,
// nothing where the file says nothing, and a wrong value named with its file and key.
TEST(GenerationConfig, SamplingDefaultsAreReadAndWrongValuesNamed) {
  const std::string dir = forge::testing::fresh_temp_dir("forge_generation_config");
  EXPECT_TRUE(models::generation_defaults(dir).empty()) << "no file: no defaults";
  auto write = [&](const nlohmann::json& j) {
    std::ofstream(dir + "/generation_config.json") << j.dump();
  };
  write({{"bos_token_id", 1}, {"eos_token_id", {2, 3}}});
  EXPECT_TRUE(models::generation_defaults(dir).empty()) << "only token ids";
  write({{"do_sample", true}, {"temperature", 0.6}, {"top_p", 0.95}, {"top_k", 20}, {"max_new_tokens", 64},
         {"repetition_penalty", nullptr}, {"eos_token_id", 2}});
  const models::GenerationDefaults g = models::generation_defaults(dir);
  EXPECT_EQ(g.temperature, 0.6);
  EXPECT_EQ(g.top_p, 0.95);
  EXPECT_EQ(g.top_k, 20);
  EXPECT_EQ(g.max_new_tokens, 64);
  EXPECT_FALSE(g.min_p || g.repetition_penalty);
  EXPECT_EQ(g.describe(), "temperature 0.6, top_p 0.95, top_k 20, max_tokens 64");
  EXPECT_TRUE(models::generation_defaults("none", dir).empty());
  EXPECT_EQ(models::generation_defaults("auto", dir).top_k, 20);
  EXPECT_THROW(models::generation_defaults(dir + "/nowhere", dir), Error);
  for (const nlohmann::json& bad : {nlohmann::json{{"temperature", "hot"}}, nlohmann::json{{"top_p", 0}},
                                    nlohmann::json{{"top_k", 2.5}}, nlohmann::json{{"max_new_tokens", 0}},
                                    nlohmann::json{{"temperature", 3}}}) {
    write(bad);
    try {
      models::generation_defaults(dir);
      ADD_FAILURE() << "accepted " << bad.dump();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("generation_config.json: '" + bad.begin().key() + "'"), std::string::npos)
          << e.what();
    }
  }
  fs::remove_all(dir);
}
