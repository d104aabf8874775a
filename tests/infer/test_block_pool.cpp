// The KV block pool and the scheduler's bookkeeping: allocation, sharing by prefix hash, reference
// counts, LRU eviction of cached blocks, chunked prefill under a token budget, preemption.
#include <gtest/gtest.h>

#include <set>

#include "infer/block_pool.h"
#include "infer/scheduler.h"

namespace forge::infer {
namespace {

TEST(BlockPool, AllocatesAllButTheNullBlockAndCountsReferences) {
  BlockPool pool(5);
  EXPECT_EQ(pool.num_free(), 4);
  auto a = pool.allocate(3);
  ASSERT_TRUE(a);
  std::set<int32_t> ids(a->begin(), a->end());
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids.count(0), 0u) << "block 0 is the reserved null block";
  EXPECT_FALSE(pool.allocate(2)) << "only one block is left";
  EXPECT_EQ(pool.num_free(), 1) << "a failed allocation takes nothing";
  pool.release(*a);
  EXPECT_EQ(pool.num_free(), 4);
  EXPECT_THROW(pool.release({(*a)[0]}), std::exception) << "double release";
}

TEST(BlockPool, SharesCachedBlocksAndEvictsLeastRecentlyUsedFirst) {
  BlockPool pool(4);  // 3 usable blocks
  const int64_t toks[4] = {5, 6, 7, 8};
  const uint64_t h1 = block_hash(0, toks, 4, 0), h2 = block_hash(h1, toks, 4, 0), h3 = block_hash(h2, toks, 4, 0);
  EXPECT_NE(h1, block_hash(0, toks, 4, 1)) << "the adapter is part of the key";
  EXPECT_NE(h1, block_hash(0, toks, 3, 0));
  auto a = *pool.allocate(3);
  pool.register_full(a[0], h1);
  pool.register_full(a[1], h2);
  pool.register_full(a[2], h3);
  // Shared while referenced: the ref count rises.
  auto hit = pool.lookup(h1);
  ASSERT_TRUE(hit);
  EXPECT_EQ(*hit, a[0]);
  EXPECT_EQ(pool.ref_count(a[0]), 2);
  pool.release({*hit});
  // Release tail first (as the scheduler does): a[2] is the least recently used cached block.
  pool.release({a[2], a[1], a[0]});
  EXPECT_EQ(pool.num_free(), 3);
  EXPECT_EQ(pool.num_cached(), 3);
  // An unreferenced cached block can still be taken back, leaving the free list.
  auto back = pool.lookup(h2);
  ASSERT_TRUE(back);
  EXPECT_EQ(pool.num_free(), 2);
  // A new allocation evicts the oldest unreferenced cached block (a[2]) and forgets its hash.
  auto fresh = *pool.allocate(1);
  EXPECT_EQ(fresh[0], a[2]);
  EXPECT_FALSE(pool.lookup(h3));
  EXPECT_TRUE(pool.lookup(h1));
}

TEST(BlockPool, UncachedBlocksAreReusedBeforeCachedOnes) {
  BlockPool pool(4);
  const int64_t toks[2] = {1, 2};
  auto a = *pool.allocate(3);
  pool.register_full(a[0], block_hash(0, toks, 2, 0));
  pool.release({a[0]});
  pool.release({a[1]});  // uncached: goes to the front
  EXPECT_EQ((*pool.allocate(1))[0], a[1]);
  EXPECT_EQ(pool.num_cached(), 1);
}

std::shared_ptr<SeqState> seq(int64_t id, int64_t n, int64_t first = 0) {
  auto s = std::make_shared<SeqState>();
  s->id = id;
  for (int64_t i = 0; i < n; ++i) s->tokens.push_back(first + i);
  return s;
}

TEST(Scheduler, ChunksLongPromptsUnderTheTokenBudget) {
  SchedulerConfig c;
  c.block_size = 4;
  c.num_blocks = 64;
  c.max_num_batched_tokens = 8;
  Scheduler s(c);
  auto a = seq(1, 20), b = seq(2, 3, 100);
  s.add(a);
  s.add(b);
  auto step = s.schedule();
  ASSERT_EQ(step.size(), 1u);
  EXPECT_EQ(step[0].n, 8);
  EXPECT_FALSE(step[0].samples());
  s.commit(step);
  step = s.schedule();
  ASSERT_EQ(step.size(), 1u);
  EXPECT_EQ(step[0].start, 8);
  s.commit(step);
  step = s.schedule();  // a's last 4 tokens, then b's 3 fit in the budget of 8... b gets 4 left
  ASSERT_EQ(step.size(), 2u);
  EXPECT_EQ(step[0].n, 4);
  EXPECT_TRUE(step[0].samples());
  EXPECT_EQ(step[1].seq->id, 2);
  EXPECT_EQ(step[1].n, 3);
  s.commit(step);
  EXPECT_EQ(a->blocks.size(), 5u);
}

TEST(Scheduler, ReusesCachedPrefixBlocksAndPreemptsTheNewestWhenFull) {
  SchedulerConfig c;
  c.block_size = 4;
  c.num_blocks = 7;  // 6 usable blocks = 24 tokens
  Scheduler s(c);
  auto a = seq(1, 10);
  s.add(a);
  auto step = s.schedule();
  s.commit(step);
  s.finish(1);  // its 2 full blocks stay cached
  auto b = seq(2, 10);
  s.add(b);
  StepStats st;
  step = s.schedule(&st);
  EXPECT_EQ(st.prefix_hit_tokens, 8);
  ASSERT_EQ(step.size(), 1u);
  EXPECT_EQ(step[0].start, 8);
  s.commit(step);
  auto d = seq(3, 12, 50);
  s.add(d);
  step = s.schedule();  // b decodes (needs nothing new yet), d is admitted with 3 blocks
  s.commit(step);
  EXPECT_EQ(s.num_running(), 2u);
  // Grow b to need more blocks than are free: d (the newest) is preempted.
  for (int i = 0; i < 12; ++i) b->tokens.push_back(900 + i);
  StepStats st2;
  step = s.schedule(&st2);
  EXPECT_EQ(st2.preempted, 1);
  EXPECT_EQ(s.num_waiting(), 1u);
  EXPECT_EQ(d->num_computed, 0);
  EXPECT_TRUE(d->blocks.empty());
}

}  // namespace
}  // namespace forge::infer
