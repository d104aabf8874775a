// The KV cache's block pool: fixed-size blocks with reference counts, an O(1) LRU free list
// threaded through the blocks, and a hash -> block map for prefix caching. Host-only
// bookkeeping: the kernels see only block ids (in block tables). Block 0 is the reserved null
// block that padding entries of a block table point to; it is never handed out.
#pragma once
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

namespace forge::infer {

// Hash of one full block: chained from the parent block's hash, the block's token ids and the
// adapter id, so equal hashes mean equal whole prefixes under the same weights.
uint64_t block_hash(uint64_t parent, const int64_t* tokens, int64_t n, int64_t adapter);

class BlockPool {
 public:
  explicit BlockPool(int64_t num_blocks);  // ids 1..num_blocks-1 are usable

  int64_t num_blocks() const { return int64_t(blocks_.size()); }
  int64_t num_free() const { return num_free_; }  // free list length (includes cached, unreferenced)
  double usage() const { return 1.0 - double(num_free_) / double(num_blocks() - 1); }

  // Takes n blocks from the LRU end of the free list (evicting their cached hashes), ref 1.
  // Returns nullopt (and takes nothing) when fewer than n are free.
  std::optional<std::vector<int32_t>> allocate(int64_t n);
  // A cached block whose hash matches, with its ref count raised (taken off the free list when it
  // was unreferenced); nullopt on a miss.
  std::optional<int32_t> lookup(uint64_t hash);
  // Marks a full block as holding `hash` so later prompts can share it.
  void register_full(int32_t block, uint64_t hash);
  // Drops one reference per block. Blocks reaching 0 go to the free list: cached ones at the
  // most-recently-used end (evicted last), uncached ones at the front (reused first).
  // Pass a sequence's blocks last-to-first so its tail is evicted before its shared head.
  void release(const std::vector<int32_t>& blocks);

  int32_t ref_count(int32_t block) const { return blocks_[size_t(block)].ref; }
  bool is_cached(int32_t block) const { return blocks_[size_t(block)].hash.has_value(); }
  int64_t num_cached() const { return int64_t(by_hash_.size()); }
  // Forgets every hash: no block is found by lookup again (the weights changed under them).
  void forget_hashes();

 private:
  struct Block {
    int32_t ref = 0;
    int32_t prev = -1, next = -1;  // free-list links (-1: none)
    bool in_free = false;
    std::optional<uint64_t> hash;
  };
  void unlink(int32_t b);
  void push_back(int32_t b);
  void push_front(int32_t b);
  std::vector<Block> blocks_;
  int32_t head_ = -1, tail_ = -1;
  int64_t num_free_ = 0;
  std::unordered_map<uint64_t, int32_t> by_hash_;
};

}  // namespace forge::infer
