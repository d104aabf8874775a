// Continuous-batching scheduler (see scheduler.h).
#include "infer/scheduler.h"

#include <algorithm>

#include "core/error.h"

namespace forge::infer {

Scheduler::Scheduler(const SchedulerConfig& cfg) : cfg_(cfg), pool_(cfg.num_blocks) {
  FORGE_CHECK(cfg.block_size > 0 && cfg.max_num_seqs > 0 && cfg.max_num_batched_tokens > 0,
              "scheduler: block_size, max_num_seqs and max_num_batched_tokens must be positive");
}

void Scheduler::add(std::shared_ptr<SeqState> seq) { waiting_.push_back(std::move(seq)); }

bool Scheduler::grow(SeqState& s, int64_t upto) {
  const int64_t need = blocks_for(upto) - int64_t(s.blocks.size());
  if (need <= 0) return true;
  auto got = pool_.allocate(need);
  if (!got) return false;
  s.blocks.insert(s.blocks.end(), got->begin(), got->end());
  return true;
}

// Keys before num_computed + 1 - window are outside every later token's window. Their blocks go
// back to the pool (a cached one stays findable by its hash until evicted) and the table points
// at the null block there, which the kernels never read: they start at the window.
void Scheduler::drop_behind_window(SeqState& s) {
  if (cfg_.window <= 0) return;
  const int64_t first_key = s.num_computed + 1 - cfg_.window;  // of the next token to compute
  const int64_t dead = std::min<int64_t>(first_key / cfg_.block_size, int64_t(s.blocks.size()));
  for (int64_t b = 0; b < dead; ++b)
    if (s.blocks[size_t(b)] != 0) {
      pool_.release({s.blocks[size_t(b)]});
      s.blocks[size_t(b)] = 0;
    }
}

void Scheduler::release(SeqState& s) {
  std::vector<int32_t> rev;  // tail first: evicted before the head
  for (auto it = s.blocks.rbegin(); it != s.blocks.rend(); ++it)
    if (*it != 0) rev.push_back(*it);  // blocks dropped behind the window are gone already
  pool_.release(rev);
  s.blocks.clear();
  s.block_hashes.clear();
  s.num_computed = 0;
}

void Scheduler::preempt(std::shared_ptr<SeqState> s) {
  release(*s);
  waiting_.push_front(std::move(s));
}

void Scheduler::take_cached_prefix(SeqState& s, StepStats* stats) {
  s.cached_prompt_tokens = 0;
  if (!cfg_.prefix_caching) return;
  // At least one token must be computed to get logits, so the last token never comes from cache.
  const int64_t full = (int64_t(s.tokens.size()) - 1) / cfg_.block_size;
  uint64_t parent = 0;
  for (int64_t b = 0; b < full; ++b) {
    const uint64_t h = block_hash(parent, s.tokens.data() + b * cfg_.block_size, cfg_.block_size, s.adapter);
    auto block = pool_.lookup(h);
    if (!block) break;
    s.blocks.push_back(*block);
    s.block_hashes.push_back(h);
    parent = h;
  }
  s.num_computed = int64_t(s.blocks.size()) * cfg_.block_size;
  s.cached_prompt_tokens = s.num_computed;
  if (stats) stats->prefix_hit_tokens += s.num_computed;
}

std::vector<ScheduledChunk> Scheduler::schedule(StepStats* stats) {
  std::vector<ScheduledChunk> out;
  int64_t budget = cfg_.max_num_batched_tokens;
  bool preempted = false;
  for (size_t i = 0; i < running_.size() && budget > 0; ++i) {
    SeqState& s = *running_[i];
    const int64_t n = std::min<int64_t>(int64_t(s.tokens.size()) - s.num_computed, budget);
    if (n <= 0) continue;
    drop_behind_window(s);
    bool self_preempted = false;
    while (!grow(s, s.num_computed + n)) {
      std::shared_ptr<SeqState> victim = running_.back();
      running_.pop_back();
      preempt(victim);
      preempted = true;
      if (stats) ++stats->preempted;
      if (victim.get() == &s) {
        self_preempted = true;
        break;
      }
    }
    if (self_preempted) break;
    out.push_back({&s, s.num_computed, n});
    budget -= n;
  }
  // Admit waiting sequences in arrival order; never while preempting (there is no room).
  while (!preempted && budget > 0 && !waiting_.empty() && int64_t(running_.size()) < cfg_.max_num_seqs) {
    std::shared_ptr<SeqState> s = waiting_.front();
    if (s->blocks.empty()) take_cached_prefix(*s, stats);
    const int64_t n = std::min<int64_t>(int64_t(s->tokens.size()) - s->num_computed, budget);
    if (!grow(*s, s->num_computed + n)) {
      if (running_.empty() && out.empty())
        FORGE_CHECK(false, "KV cache: ", pool_.num_blocks() - 1, " blocks cannot hold one sequence of ",
                    s->tokens.size(), " tokens");
      release(*s);  // give back its prefix hits; it stays first in line
      break;
    }
    waiting_.pop_front();
    running_.push_back(s);
    out.push_back({s.get(), s->num_computed, n});
    budget -= n;
  }
  return out;
}

void Scheduler::commit(const std::vector<ScheduledChunk>& chunks) {
  for (const ScheduledChunk& c : chunks) {
    SeqState& s = *c.seq;
    s.num_computed = c.start + c.n;
    if (!cfg_.prefix_caching) continue;
    const int64_t full = s.num_computed / cfg_.block_size;
    for (int64_t b = int64_t(s.block_hashes.size()); b < full; ++b) {
      const uint64_t parent = b == 0 ? 0 : s.block_hashes[size_t(b - 1)];
      const uint64_t h = block_hash(parent, s.tokens.data() + b * cfg_.block_size, cfg_.block_size, s.adapter);
      pool_.register_full(s.blocks[size_t(b)], h);
      s.block_hashes.push_back(h);
    }
  }
}

void Scheduler::reset_prefix_cache() {
  FORGE_CHECK(running_.empty() && waiting_.empty(), "reset_prefix_cache: ", running_.size(), " sequences running and ",
              waiting_.size(), " waiting (reset between generations)");
  pool_.forget_hashes();
}

void Scheduler::finish(int64_t seq_id) {
  auto match = [&](const std::shared_ptr<SeqState>& s) { return s->id == seq_id; };
  if (auto it = std::find_if(running_.begin(), running_.end(), match); it != running_.end()) {
    release(**it);
    running_.erase(it);
  } else if (auto wt = std::find_if(waiting_.begin(), waiting_.end(), match); wt != waiting_.end()) {
    release(**wt);
    waiting_.erase(wt);
  }
}

}  // namespace forge::infer
