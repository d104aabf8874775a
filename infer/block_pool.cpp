// Block pool with LRU eviction of cached blocks (see block_pool.h).
#include "infer/block_pool.h"

#include "core/error.h"

namespace forge::infer {

uint64_t block_hash(uint64_t parent, const int64_t* tokens, int64_t n, int64_t adapter) {
  // FNV-1a over the parent hash, the adapter and the tokens, 8 bytes each.
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&](uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xff;
      h *= 0x100000001b3ull;
    }
  };
  mix(parent);
  mix(uint64_t(adapter));
  for (int64_t i = 0; i < n; ++i) mix(uint64_t(tokens[i]));
  return h;
}

BlockPool::BlockPool(int64_t num_blocks) : blocks_(size_t(num_blocks)) {
  FORGE_CHECK(num_blocks >= 2, "KV cache: need at least 2 blocks (one is the reserved null block), got ",
              num_blocks);
  for (int32_t b = 1; b < int32_t(num_blocks); ++b) push_back(b);
}

void BlockPool::unlink(int32_t b) {
  Block& k = blocks_[size_t(b)];
  if (k.prev >= 0) blocks_[size_t(k.prev)].next = k.next; else head_ = k.next;
  if (k.next >= 0) blocks_[size_t(k.next)].prev = k.prev; else tail_ = k.prev;
  k.prev = k.next = -1;
  k.in_free = false;
  --num_free_;
}

void BlockPool::push_back(int32_t b) {
  Block& k = blocks_[size_t(b)];
  k.prev = tail_;
  k.next = -1;
  if (tail_ >= 0) blocks_[size_t(tail_)].next = b; else head_ = b;
  tail_ = b;
  k.in_free = true;
  ++num_free_;
}

void BlockPool::push_front(int32_t b) {
  Block& k = blocks_[size_t(b)];
  k.next = head_;
  k.prev = -1;
  if (head_ >= 0) blocks_[size_t(head_)].prev = b; else tail_ = b;
  head_ = b;
  k.in_free = true;
  ++num_free_;
}

std::optional<std::vector<int32_t>> BlockPool::allocate(int64_t n) {
  if (n > num_free_) return std::nullopt;
  std::vector<int32_t> out;
  out.reserve(size_t(n));
  for (int64_t i = 0; i < n; ++i) {
    int32_t b = head_;
    unlink(b);
    Block& k = blocks_[size_t(b)];
    if (k.hash) {  // evict: the block's old contents are about to be overwritten
      by_hash_.erase(*k.hash);
      k.hash.reset();
    }
    k.ref = 1;
    out.push_back(b);
  }
  return out;
}

std::optional<int32_t> BlockPool::lookup(uint64_t hash) {
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return std::nullopt;
  Block& k = blocks_[size_t(it->second)];
  if (k.in_free) unlink(it->second);
  ++k.ref;
  return it->second;
}

void BlockPool::forget_hashes() {
  for (Block& k : blocks_) k.hash.reset();
  by_hash_.clear();
}

void BlockPool::register_full(int32_t block, uint64_t hash) {
  Block& k = blocks_[size_t(block)];
  if (k.hash) return;                        // already registered (a shared prefix block)
  if (by_hash_.count(hash)) return;          // another block holds the same prefix; keep that one
  k.hash = hash;
  by_hash_[hash] = block;
}

void BlockPool::release(const std::vector<int32_t>& blocks) {
  for (int32_t b : blocks) {
    Block& k = blocks_[size_t(b)];
    FORGE_CHECK(b > 0 && k.ref > 0, "KV cache: block ", b, " released more often than taken");
    if (--k.ref > 0) continue;
    if (k.hash) push_back(b); else push_front(b);
  }
}

}  // namespace forge::infer
