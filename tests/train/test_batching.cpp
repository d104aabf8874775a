// Batches: labels are the next token only where the mask says so, packed rows restart positions
// per document, and a packed row gives each document exactly its unpacked logits.
#include <gtest/gtest.h>

#include "core/autograd.h"
#include "data/packing.h"
#include "models/pretrained.h"
#include "tests/support/test_util.h"

using namespace forge;

namespace {
data::ExampleSet three_docs() {
  data::ExampleSet s;
  s.add({1, 10, 11, 12, 13}, {0, 0, 1, 1, 1});
  s.add({1, 20, 21}, {0, 1, 1});
  s.add({1, 30, 31, 32, 33, 34, 35}, {0, 0, 0, 1, 1, 1, 1});
  return s;
}

TEST(Batching, LabelsPositionsAndDocuments) {
  data::ExampleSet s = three_docs();
  data::Batcher packed(s, 16, 1, /*packing=*/true, /*shuffle=*/false, 0);
  ASSERT_EQ(packed.num_batches(0), 1);
  data::Batch b = packed.batch(0, 0);
  EXPECT_EQ(b.ids.shape(), (Shape{1, 15}));
  EXPECT_EQ(b.ids.to_vector<int64_t>(), (std::vector<int64_t>{1, 10, 11, 12, 13, 1, 20, 21, 1, 30, 31, 32, 33, 34, 35}));
  EXPECT_EQ(b.labels.to_vector<int64_t>(),
            (std::vector<int64_t>{-100, 11, 12, 13, -100, 20, 21, -100, -100, -100, 32, 33, 34, 35, -100}));
  EXPECT_EQ(b.positions.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(b.doc_ids.to_vector<int32_t>(), (std::vector<int32_t>{0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2}));
  EXPECT_EQ(b.targets, 9);
  EXPECT_EQ(b.tokens, 15);

  data::Batcher rows(s, 16, 2, /*packing=*/false, /*shuffle=*/false, 0);
  ASSERT_EQ(rows.num_batches(0), 2);
  data::Batch b0 = rows.batch(0, 0);
  EXPECT_EQ(b0.ids.shape(), (Shape{2, 5}));  // padded to the longest row of the batch
  EXPECT_FALSE(b0.doc_ids.defined());
  EXPECT_EQ(b0.labels.to_vector<int64_t>(), (std::vector<int64_t>{-100, 11, 12, 13, -100, 20, 21, -100, -100, -100}));
  EXPECT_EQ(rows.batch(0, 1).ids.shape(), (Shape{1, 7}));

  // Packing respects the row length: 5 + 3 fit in 8, the 7-token document starts a new row.
  data::Batcher tight(s, 8, 4, true, false, 0);
  EXPECT_EQ(tight.num_rows(0), 2);
}

TEST(Batching, ShuffleIsSeededAndChangesPerEpoch) {
  data::ExampleSet s;
  for (int i = 0; i < 50; ++i) s.add({1, i + 2, i + 3}, {0, 1, 1});
  data::Batcher a(s, 8, 1, false, true, 42), b(s, 8, 1, false, true, 42), c(s, 8, 1, false, true, 43);
  auto first_ids = [](const data::Batcher& x, int64_t epoch) {
    std::vector<int64_t> v;
    for (int64_t i = 0; i < 10; ++i) v.push_back(x.batch(epoch, i).ids.to_vector<int64_t>()[1]);
    return v;
  };
  EXPECT_EQ(first_ids(a, 0), first_ids(b, 0));
  EXPECT_NE(first_ids(a, 0), first_ids(c, 0));
  EXPECT_NE(first_ids(a, 0), first_ids(a, 1));
  auto p = data::seeded_permutation(1000, 7);
  std::sort(p.begin(), p.end());
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(p[i], i);
}

// Attention and positions never cross documents: each document of a packed row gets the logits
// it gets alone.
TEST(Batching, PackedLogitsEqualUnpackedLogits) {
  const std::string dir = forge::testing::fresh_temp_dir("packing");
  forge::testing::make_tiny_model_dir(dir);
  auto model = models::load_model(dir);
  data::ExampleSet s = three_docs();
  data::Batch b = data::Batcher(s, 16, 1, true, false, 0).batch(0, 0);
  NoGradGuard ng;
  models::ForwardOptions fo;
  fo.positions = b.positions;
  fo.doc_ids = b.doc_ids;
  Tensor packed = model->forward(b.ids, fo);  // [1, 15, V]
  int64_t at = 0;
  for (int64_t e = 0; e < s.size(); ++e) {
    const int64_t n = s.length(e);
    std::vector<int64_t> ids(s.tokens.begin() + s.offsets[e], s.tokens.begin() + s.offsets[e + 1]);
    Tensor alone = model->forward(Tensor::from_vector(ids, {1, n}));
    EXPECT_LE(forge::testing::rel_error(packed.narrow(1, at, n).contiguous(), alone), 1e-5) << "document " << e;
    at += n;
  }
}

}  // namespace
