// Continuous batching over the paged KV cache. Each step gets a token budget: running sequences
// go first (one token per decode, a chunk per unfinished prefill), then waiting ones are admitted
// first come first served while blocks, budget and max_num_seqs allow. A prompt longer than the
// budget is prefilled in chunks across steps. When a running sequence needs a block and none is
// free, the newest running sequence is preempted: its blocks are freed and it is recomputed later
// (its full blocks usually come back from the prefix cache).
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "infer/block_pool.h"

namespace forge::infer {

struct SchedulerConfig {
  int64_t block_size = 16;
  int64_t num_blocks = 0;  // including the reserved null block
  int64_t max_num_seqs = 64;
  int64_t max_num_batched_tokens = 2048;
  bool prefix_caching = true;
  // The model's sliding window when every layer has one (Mistral), else 0: blocks wholly before
  // the window of a sequence's next token are never read again and go back to the pool.
  int64_t window = 0;
};

// A sequence as the scheduler sees it: tokens whose K/V must be in the cache before the next
// token can be drawn. The engine appends sampled tokens to `tokens`.
struct SeqState {
  int64_t id = 0;
  int64_t adapter = 0;                  // 0: base model (part of the prefix-cache key)
  std::vector<int64_t> tokens;          // prompt + generated
  int64_t num_computed = 0;             // leading tokens whose K/V are cached
  std::vector<int32_t> blocks;          // block table
  std::vector<uint64_t> block_hashes;   // hashes of the leading full blocks registered so far
  int64_t cached_prompt_tokens = 0;     // prefix-cache hits at the last admission
};

struct ScheduledChunk {
  SeqState* seq;
  int64_t start, n;  // computes tokens[start, start + n)
  bool samples() const { return start + n == int64_t(seq->tokens.size()); }
};

struct StepStats {
  int64_t prefix_hit_tokens = 0;   // tokens skipped thanks to the prefix cache this step
  int64_t preempted = 0;
};

class Scheduler {
 public:
  explicit Scheduler(const SchedulerConfig& cfg);

  void add(std::shared_ptr<SeqState> seq);  // joins the waiting queue
  // Chooses this step's chunks (empty when there is nothing to do) and allocates their blocks.
  std::vector<ScheduledChunk> schedule(StepStats* stats = nullptr);
  // After the model ran the chunks: advances num_computed and registers newly full blocks.
  void commit(const std::vector<ScheduledChunk>& chunks);
  // Removes a sequence (finished or cancelled), releasing its blocks.
  void finish(int64_t seq_id);
  // No cached prefix is reused after this (new weights); only with no sequence left, since a
  // running one would go on registering blocks computed with the old weights.
  void reset_prefix_cache();

  size_t num_running() const { return running_.size(); }
  size_t num_waiting() const { return waiting_.size(); }
  const BlockPool& pool() const { return pool_; }
  const SchedulerConfig& config() const { return cfg_; }
  // Blocks a sequence of n tokens occupies.
  int64_t blocks_for(int64_t n) const { return (n + cfg_.block_size - 1) / cfg_.block_size; }

 private:
  bool grow(SeqState& s, int64_t upto);  // blocks for tokens [0, upto); false when none are free
  void drop_behind_window(SeqState& s);  // frees blocks no later token can see (window > 0)
  void preempt(std::shared_ptr<SeqState> s);
  void take_cached_prefix(SeqState& s, StepStats* stats);
  void release(SeqState& s);

  SchedulerConfig cfg_;
  BlockPool pool_;
  std::vector<std::shared_ptr<SeqState>> running_;  // admission order
  std::deque<std::shared_ptr<SeqState>> waiting_;
};

}  // namespace forge::infer
