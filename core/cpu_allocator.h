// CPU memory for tensors. Small blocks come from malloc. Blocks of 1 MiB and more are kept when
// freed and handed out again, up to a cap; those of 4 MiB and more sit on transparent huge pages
// (FORGE_CPU_HUGEPAGES=0 turns that off).
// Why: glibc gives such blocks back to the kernel at once (they are mmap'ed), so every training
// or prefill step paid a page fault and a page clear for each 4 KiB of its activations.
#pragma once
#include <cstddef>

namespace forge::cpu_alloc {

struct Block {
  void* ptr = nullptr;
  size_t bytes = 0;  // the block's real size, at least what was asked for
};

// 64-byte aligned. A kept block serves a request whose block size (64 KiB granules, whole huge
// pages from 4 MiB) is at most its size and at least 4/5 of it; of equal blocks, the one freed
// last (its pages are resident and warm).
Block allocate(size_t bytes);
void release(Block b);

struct Stats {
  size_t cached_bytes = 0;  // kept blocks, free for reuse
  size_t hits = 0;          // large requests served from kept blocks
  size_t misses = 0;        // large requests that needed new memory
};
Stats stats();

// The most bytes kept free. The default is 1/8 of physical memory, shared by the ranks mpirun
// starts on the node; FORGE_CPU_CACHE_MB overrides it, and 0 turns keeping off. Lowering it
// releases the least recently freed blocks first.
size_t cache_limit();
void set_cache_limit(size_t bytes);

// Gives every kept block back to the system.
void empty_cache();

}  // namespace forge::cpu_alloc
