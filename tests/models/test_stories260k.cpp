// A real pretrained model: Karpathy's stories260K (llama2.c format, GQA 8/4, tied embeddings),
// read into the HF layout. Greedy generation from BOS must give the published story.
// Skips when ../shared/models/stories260K is not there.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "core/autograd.h"
#include "core/file_util.h"
#include "infer/generate.h"
#include "models/llama2c.h"

using namespace forge;

namespace {
std::string model_dir() {
  if (const char* e = std::getenv("FORGE_STORIES260K")) return e;
  const std::string d = std::string(FORGE_SOURCE_DIR) + "/../shared/models/stories260K";  // beside the checkout
  return std::filesystem::exists(d + "/stories260K.bin") ? d : "";
}

// tok512.bin: int32 max_len, then per id: f32 score, int32 length, bytes.
std::vector<std::string> read_vocab(const std::string& path) {
  const std::string b = read_text_file(path);
  std::vector<std::string> v;
  size_t p = 4;
  while (p + 8 <= b.size()) {
    int32_t n;
    std::memcpy(&n, b.data() + p + 4, 4);
    v.push_back(b.substr(p + 8, size_t(n)));
    p += 8 + size_t(n);
  }
  return v;
}
}  // namespace

TEST(Stories260K, GreedyStoryFromBosMatchesUpstream) {
  const std::string dir = model_dir();
  if (dir.empty()) GTEST_SKIP() << "../shared/models/stories260K not found";
  auto model = models::load_llama2c(dir + "/stories260K.bin");
  {
    NoGradGuard ng;
    std::vector<float> logits = model->forward(Tensor::from_vector(std::vector<int64_t>{1}, {1, 1})).to_float_vector();
    EXPECT_EQ(infer::argmax(logits.data(), 512), 403);
    EXPECT_NEAR(logits[403], 17.0235, 1e-3);
  }
  infer::GenerateOptions opt;
  opt.max_new_tokens = 40;
  opt.sampling.temperature = 0;
  auto res = infer::generate(*model, {1}, opt);
  const std::vector<int64_t> first10(res.tokens.begin(), res.tokens.begin() + 10);
  EXPECT_EQ(first10, (std::vector<int64_t>{403, 407, 261, 378, 432, 383, 286, 261, 376, 298}));
  std::vector<std::string> vocab = read_vocab(dir + "/tok512.bin");
  std::string text;
  for (int64_t id : res.tokens) text += vocab[size_t(id)];
  // llama2.c prints the first piece without its leading space.
  EXPECT_EQ(text.rfind(" Once upon a time, there was a little girl named Lily. She loved to play outside", 0), 0u) << text;
}
