// The CPU allocator keeps freed large blocks for reuse (best fit within 5/4, least recently freed
// dropped first past the limit) and hands small ones back to malloc.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "core/cpu_allocator.h"
#include "core/tensor.h"

namespace forge {
namespace {
constexpr size_t MiB = size_t(1) << 20;

// Each test starts from an empty cache with a known limit and puts the default back.
struct CpuAllocator : ::testing::Test {
  size_t saved = cpu_alloc::cache_limit();
  void SetUp() override {
    cpu_alloc::empty_cache();
    cpu_alloc::set_cache_limit(64 * MiB);
  }
  void TearDown() override {
    cpu_alloc::empty_cache();
    cpu_alloc::set_cache_limit(saved);
  }
};

TEST_F(CpuAllocator, AFreedLargeBlockServesTheNextRequestOfItsSize) {
  cpu_alloc::Block a = cpu_alloc::allocate(4 * MiB);
  ASSERT_NE(a.ptr, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.ptr) % 64, 0u);
  std::memset(a.ptr, 7, 4 * MiB);  // the whole block is usable
  cpu_alloc::release(a);
  EXPECT_EQ(cpu_alloc::stats().cached_bytes, a.bytes);
  const size_t hits = cpu_alloc::stats().hits;
  cpu_alloc::Block b = cpu_alloc::allocate(4 * MiB - 100);  // rounds to the same size
  EXPECT_EQ(b.ptr, a.ptr);
  EXPECT_EQ(b.bytes, a.bytes);
  EXPECT_EQ(cpu_alloc::stats().hits, hits + 1);
  EXPECT_EQ(cpu_alloc::stats().cached_bytes, 0u);
  cpu_alloc::release(b);
}

// Of several kept blocks of one size, the one freed last serves: the others stay untouched (and,
// if they never were, not resident) instead of every one being cycled through.
TEST_F(CpuAllocator, TheMostRecentlyFreedOfEqualBlocksServesFirst) {
  cpu_alloc::Block a = cpu_alloc::allocate(4 * MiB), b = cpu_alloc::allocate(4 * MiB),
                   c = cpu_alloc::allocate(4 * MiB);
  cpu_alloc::release(a);
  cpu_alloc::release(b);
  cpu_alloc::release(c);
  for (int i = 0; i < 5; ++i) {
    cpu_alloc::Block d = cpu_alloc::allocate(4 * MiB);
    EXPECT_EQ(d.ptr, c.ptr) << "round " << i;
    cpu_alloc::release(d);
  }
  cpu_alloc::Block x = cpu_alloc::allocate(4 * MiB), y = cpu_alloc::allocate(4 * MiB);
  EXPECT_EQ(x.ptr, c.ptr);
  EXPECT_EQ(y.ptr, b.ptr);
  cpu_alloc::release(x);
  cpu_alloc::release(y);
}

TEST_F(CpuAllocator, BestFitTakesAtMostFiveQuartersOfTheRequest) {
  cpu_alloc::Block big = cpu_alloc::allocate(4 * MiB);
  cpu_alloc::release(big);
  // 3 MiB would waste a quarter of a 4 MiB block and more: new memory.
  const size_t misses = cpu_alloc::stats().misses;
  cpu_alloc::Block small = cpu_alloc::allocate(3 * MiB);
  EXPECT_NE(small.ptr, big.ptr);
  EXPECT_EQ(cpu_alloc::stats().misses, misses + 1);
  // 3.5 MiB is within 5/4: the kept block, with its real size.
  cpu_alloc::Block near = cpu_alloc::allocate(3 * MiB + MiB / 2);
  EXPECT_EQ(near.ptr, big.ptr);
  EXPECT_EQ(near.bytes, big.bytes);
  cpu_alloc::release(small);
  cpu_alloc::release(near);
}

TEST_F(CpuAllocator, BlocksOfFourMiBAndMoreAreWholeHugePages) {
  const char* env = std::getenv("FORGE_CPU_HUGEPAGES");
  if (env && std::string(env) == "0") GTEST_SKIP() << "FORGE_CPU_HUGEPAGES=0";
  cpu_alloc::Block b = cpu_alloc::allocate(5 * MiB);
  EXPECT_EQ(b.bytes, 6 * MiB);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.ptr) % (2 * MiB), 0u);
  std::memset(b.ptr, 1, b.bytes);
  cpu_alloc::release(b);
  cpu_alloc::Block again = cpu_alloc::allocate(4 * MiB + MiB / 2);  // also 6 MiB: the same block
  EXPECT_EQ(again.ptr, b.ptr);
  cpu_alloc::release(again);
  cpu_alloc::Block c = cpu_alloc::allocate(3 * MiB);  // below 4 MiB: 64 KiB granules
  EXPECT_EQ(c.bytes, 3 * MiB);
  cpu_alloc::release(c);
}

TEST_F(CpuAllocator, SmallBlocksGoBackToMalloc) {
  cpu_alloc::Block s = cpu_alloc::allocate(1000);
  ASSERT_NE(s.ptr, nullptr);
  EXPECT_EQ(s.bytes, 1024u);
  cpu_alloc::release(s);
  EXPECT_EQ(cpu_alloc::stats().cached_bytes, 0u);
  cpu_alloc::Block z = cpu_alloc::allocate(0);  // a zero-size tensor still gets a valid pointer
  EXPECT_NE(z.ptr, nullptr);
  cpu_alloc::release(z);
}

TEST_F(CpuAllocator, TheLimitDropsTheLeastRecentlyFreedFirst) {
  cpu_alloc::set_cache_limit(5 * MiB);
  cpu_alloc::Block a = cpu_alloc::allocate(2 * MiB), b = cpu_alloc::allocate(2 * MiB),
                   c = cpu_alloc::allocate(2 * MiB);
  cpu_alloc::release(a);
  cpu_alloc::release(b);
  EXPECT_EQ(cpu_alloc::stats().cached_bytes, 4 * MiB);
  cpu_alloc::release(c);  // 6 MiB > 5: a goes
  EXPECT_EQ(cpu_alloc::stats().cached_bytes, 4 * MiB);
  cpu_alloc::Block x = cpu_alloc::allocate(2 * MiB), y = cpu_alloc::allocate(2 * MiB);
  EXPECT_TRUE((x.ptr == b.ptr && y.ptr == c.ptr) || (x.ptr == c.ptr && y.ptr == b.ptr));
  cpu_alloc::release(x);
  cpu_alloc::release(y);
  cpu_alloc::set_cache_limit(2 * MiB);  // lowering the limit releases at once
  EXPECT_EQ(cpu_alloc::stats().cached_bytes, 2 * MiB);
  cpu_alloc::set_cache_limit(0);  // nothing kept
  EXPECT_EQ(cpu_alloc::stats().cached_bytes, 0u);
  cpu_alloc::Block d = cpu_alloc::allocate(2 * MiB);
  cpu_alloc::release(d);
  EXPECT_EQ(cpu_alloc::stats().cached_bytes, 0u);
}

// A training loop allocates the same activation shapes every step: after the first step every
// large tensor comes from kept memory, and the values are whatever the step writes.
TEST_F(CpuAllocator, RepeatedStepsReuseTheirMemory) {
  auto step = [](float v) {
    std::vector<Tensor> acts;
    for (int64_t rows : {512, 2048, 4096}) acts.push_back(Tensor::full({rows, 768}, v));  // 1.5-12 MiB
    float sum = 0;
    for (const Tensor& t : acts) sum += t.data<float>()[t.numel() - 1];
    return sum;
  };
  EXPECT_EQ(step(1.0f), 3.0f);
  const cpu_alloc::Stats after_first = cpu_alloc::stats();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(step(float(i)), 3.0f * float(i));
  const cpu_alloc::Stats s = cpu_alloc::stats();
  EXPECT_EQ(s.misses, after_first.misses);
  EXPECT_EQ(s.hits, after_first.hits + 15);
}

TEST_F(CpuAllocator, ManyThreadsAtOnce) {
  cpu_alloc::set_cache_limit(16 * MiB);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([t] {
      for (int i = 0; i < 200; ++i) {
        const size_t n = (1 + (i + t) % 4) * MiB;
        cpu_alloc::Block b = cpu_alloc::allocate(n);
        ASSERT_NE(b.ptr, nullptr);
        static_cast<char*>(b.ptr)[n - 1] = char(i);
        cpu_alloc::release(b);
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_LE(cpu_alloc::stats().cached_bytes, 16 * MiB);
}

}  // namespace
}  // namespace forge
