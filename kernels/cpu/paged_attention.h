// Attention over a paged KV cache (serving): each sequence's keys and values live in fixed-size
// blocks listed by its block table; a step's queries of many sequences are packed into one batch.
#pragma once
#include <cstdint>

#include "kernels/types.h"

namespace forge::cpu {

struct PagedAttnShape {
  int64_t num_seqs, Hq, Hkv, D;
  int64_t block_size;  // tokens per block
  int64_t max_blocks;  // columns of the block table
  float scale;
  int64_t window = 0;  // sliding window: a row at position p sees keys p + 1 - window .. p (0: all)
  float softcap = 0;   // scaled scores become softcap * tanh(s / softcap) (Gemma 2); 0: none
};

// The first key a row at position `pos` sees.
inline int64_t paged_first_key(const PagedAttnShape& s, int64_t pos) {
  return s.window > 0 && pos + 1 > s.window ? pos + 1 - s.window : 0;
}

// q, out: [N, Hq, D] f32 contiguous, N = query_start[num_seqs].
// k_cache: [num_blocks, Hkv, D, block_size] (keys transposed per block and head);
// v_cache: [num_blocks, Hkv, block_size, D]; both in dt (f32 or bf16).
// block_tables [num_seqs, max_blocks]; query_start [num_seqs + 1]; context_lens [num_seqs].
// Sequence s owns rows query_start[s] .. query_start[s+1]-1, its newest n_s tokens: row i sits at
// position context_lens[s] - n_s + i and sees keys paged_first_key(pos) .. pos (causal, with the
// window). No slot outside that range is used (the CPU kernel scores whole key tiles and drops the
// lanes outside it), so blocks wholly before every row's window may already be freed.
void paged_attention(const PagedAttnShape& s, const float* q, const void* k_cache, const void* v_cache, DType dt,
                     const int32_t* block_tables, const int32_t* query_start, const int32_t* context_lens,
                     float* out);

// k, v: [N, Hkv, D] f32 rows, written to cache slot slots[i] = block * block_size + offset.
void paged_kv_write(int64_t N, int64_t Hkv, int64_t D, int64_t block_size, const float* k, const float* v,
                    const int64_t* slots, void* k_cache, void* v_cache, DType dt);

}  // namespace forge::cpu
