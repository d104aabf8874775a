// Paged attention against the contiguous attention op: random q/k/v scattered over shuffled
// blocks, every unused cache slot NaN so that any use of padding shows in the output. With a
// sliding window the blocks before every row's window are NaN too, as if the engine freed them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "core/ops.h"
#include "core/random.h"
#include "kernels/cuda/cuda_backend.h"
#include "tests/support/test_util.h"

namespace forge {
namespace {

struct Case {
  std::vector<int64_t> ctx, n;  // per sequence: tokens in cache after the step, new tokens this step
  int64_t bs = 4, D = 16;       // block size and head dim (16 x 48: the vector paths of the CPU kernel)
  int64_t window = 0;
  double softcap = 0, scale = 0;  // Gemma 2's soft-cap and its own scale (0: 1/sqrt(D))
  AttentionOptions options() const {
    AttentionOptions o;
    o.window = window;
    o.softcap = softcap;
    if (scale > 0) o.scale = scale;
    return o;
  }
};

// Overwrites with NaN the blocks of sequence s that no row of this step may read.
void poison_blocks_before_window(const Case& cs, int64_t s, const int32_t* table, Tensor& kc, Tensor& vc) {
  if (cs.window == 0) return;
  const int64_t first_pos = cs.ctx[size_t(s)] - cs.n[size_t(s)];
  const int64_t first_key = std::max<int64_t>(0, first_pos + 1 - cs.window);
  for (int64_t b = 0; b < first_key / cs.bs; ++b) {
    kc.select(0, table[b]).fill_(NAN);
    vc.select(0, table[b]).fill_(NAN);
  }
}

// Checks paged_attention on `dev` against scaled_dot_product_attention per sequence (on the CPU).
void check(const Case& cs, DType cache_dtype, Device dev, double tol) {
  const int64_t Hq = 4, Hkv = 2, D = cs.D, bs = cs.bs, S = int64_t(cs.ctx.size());
  int64_t blocks_needed = 1;
  for (int64_t c : cs.ctx) blocks_needed += (c + bs - 1) / bs;
  const int64_t num_blocks = blocks_needed + 3;  // spare blocks stay NaN
  std::vector<int32_t> order(size_t(num_blocks - 1));
  std::iota(order.begin(), order.end(), 1);
  std::shuffle(order.begin(), order.end(), std::mt19937(3));
  Generator gen(11);
  Tensor kc = Tensor::empty({num_blocks, Hkv, D, bs}, DType::F32), vc = Tensor::empty({num_blocks, Hkv, bs, D}, DType::F32);
  kc.fill_(NAN);
  vc.fill_(NAN);
  int64_t max_blocks = 0;
  for (int64_t c : cs.ctx) max_blocks = std::max(max_blocks, (c + bs - 1) / bs);
  std::vector<int32_t> tables(size_t(S * max_blocks), 0), qstart{0}, ctx, row_seq;
  std::vector<Tensor> ks, vs, qs;
  size_t next = 0;
  for (int64_t s = 0; s < S; ++s) {
    const int64_t L = cs.ctx[size_t(s)];
    for (int64_t b = 0; b < (L + bs - 1) / bs; ++b) tables[size_t(s * max_blocks + b)] = order[next++];
    Tensor k = randn({L, Hkv, D}, DType::F32, &gen), v = randn({L, Hkv, D}, DType::F32, &gen);
    std::vector<int64_t> slots;
    for (int64_t t = 0; t < L; ++t) slots.push_back(int64_t(tables[size_t(s * max_blocks + t / bs)]) * bs + t % bs);
    PagedBatch wb;
    wb.slots = Tensor::from_vector(slots, {L});
    Tensor kq = k.to(cache_dtype), vq = v.to(cache_dtype);  // the cache holds rounded values
    Tensor kcd = kc.to(cache_dtype), vcd = vc.to(cache_dtype);
    paged_kv_write(kcd, vcd, kq, vq, wb);
    kc = kcd.to(DType::F32);
    vc = vcd.to(DType::F32);
    poison_blocks_before_window(cs, s, tables.data() + s * max_blocks, kc, vc);
    ks.push_back(kq.to(DType::F32));
    vs.push_back(vq.to(DType::F32));
    qs.push_back(randn({cs.n[size_t(s)], Hq, D}, DType::F32, &gen));
    qstart.push_back(qstart.back() + int32_t(cs.n[size_t(s)]));
    ctx.push_back(int32_t(L));
    for (int64_t i = 0; i < cs.n[size_t(s)]; ++i) row_seq.push_back(int32_t(s));
  }
  const int64_t N = qstart.back();
  PagedBatch b;
  b.block_tables = Tensor::from_vector(tables, {S, max_blocks}, dev);
  b.query_start = Tensor::from_vector(qstart, {S + 1}, dev);
  b.context_lens = Tensor::from_vector(ctx, {S}, dev);
  b.row_seq = Tensor::from_vector(row_seq, {N}, dev);
  Tensor q = cat(qs, 0);
  Tensor got = paged_attention(q.to(dev), kc.to(cache_dtype).to(dev), vc.to(cache_dtype).to(dev), b, cs.options()).to(Device::cpu());
  for (float x : got.to_float_vector()) ASSERT_TRUE(std::isfinite(x)) << "a padding slot (NaN) was used";
  for (int64_t s = 0; s < S; ++s) {
    // Reference: queries are the sequence's last n positions, causal over its L keys.
    Tensor qr = qs[size_t(s)].transpose(0, 1).unsqueeze(0);  // [1, Hq, n, D]
    Tensor kr = ks[size_t(s)].transpose(0, 1).unsqueeze(0), vr = vs[size_t(s)].transpose(0, 1).unsqueeze(0);
    Tensor want = scaled_dot_product_attention(qr, kr, vr, cs.options()).squeeze(0).transpose(0, 1);  // [n, Hq, D]
    Tensor g = got.narrow(0, qstart[size_t(s)], cs.n[size_t(s)]);
    EXPECT_LT(testing::rel_error(g, want), tol) << "sequence " << s;
  }
}

// Decodes, a whole prefill, chunked prefills, a short multi-row chunk (direct path, causal inside)
// and a 34-row chunk (a 32-row GEMM task and a 2-row tail).
const Case kMixed{{13, 1, 7, 32, 5, 40}, {1, 1, 7, 9, 2, 34}};
// The same with 16-token blocks and 48-wide heads (stories15M's), and contexts ending inside blocks.
const Case kWide{{13, 1, 7, 32, 5, 40, 200}, {1, 1, 7, 9, 2, 34, 1}, 16, 48};
// Sliding windows: shorter than a context, longer than some, ending mid-block, crossing a chunk
// of 34 rows (whose rows' windows start at different keys), and one key wide.
const Case kWindow{{13, 1, 7, 32, 5, 40, 200}, {1, 1, 7, 9, 2, 34, 1}, 4, 16, 10};
const Case kWindowWide{{13, 1, 7, 32, 5, 90, 200}, {1, 1, 7, 9, 2, 34, 1}, 16, 48, 37};
const Case kWindowOne{{13, 40}, {1, 34}, 4, 16, 1};
// Soft-capped scores (scale 0.5 makes most of them reach the cap), with and without a window.
const Case kSoftcap{{13, 1, 7, 32, 5, 90, 200}, {1, 1, 7, 9, 2, 34, 1}, 16, 48, 0, 2.0, 0.5};
const Case kSoftcapWindow{{13, 1, 7, 32, 5, 40, 200}, {1, 1, 7, 9, 2, 34, 1}, 4, 16, 10, 2.0, 0.5};

TEST(PagedAttention, MatchesContiguousAttentionAndNeverUsesPadding) {
  check(kMixed, DType::F32, Device::cpu(), 1e-5);
  check(kWide, DType::F32, Device::cpu(), 1e-5);
}

TEST(PagedAttention, Bf16Cache) {
  check(kMixed, DType::BF16, Device::cpu(), 1e-5);
  check(kWide, DType::BF16, Device::cpu(), 1e-5);
}

TEST(PagedAttention, SlidingWindowReadsOnlyTheWindow) {
  for (const Case& cs : {kWindow, kWindowWide, kWindowOne}) {
    check(cs, DType::F32, Device::cpu(), 1e-5);
    check(cs, DType::BF16, Device::cpu(), 1e-5);
  }
}

TEST(PagedAttention, SoftcappedScores) {
  for (const Case& cs : {kSoftcap, kSoftcapWindow}) {
    check(cs, DType::F32, Device::cpu(), 1e-5);
    check(cs, DType::BF16, Device::cpu(), 1e-5);
  }
}

TEST(PagedAttentionCuda, MatchesContiguousAttention) {
  if (!cuda::available()) GTEST_SKIP() << "no GPU: " << cuda::status();
  for (const Case& cs : {kMixed, kWide, kWindow, kWindowWide, kWindowOne, kSoftcap, kSoftcapWindow}) {
    check(cs, DType::F32, Device::cuda(0), 1e-5);
    check(cs, DType::BF16, Device::cuda(0), 1e-5);
  }
}

}  // namespace
}  // namespace forge
