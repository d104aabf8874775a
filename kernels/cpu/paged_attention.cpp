// Paged attention on the CPU. A block holds per kv head a key tile [D, block_size] (transposed, so
// that one query's scores for the block are a vector of block_size lanes built by D multiply-adds,
// with no horizontal sums) and a value tile [block_size, D] (the weighted sum runs along D); each
// tile is contiguous, so a head's keys and values stream. Per (sequence, kv heads, query rows):
// - few rows (decode): scores and outputs straight from the cache blocks;
// - many rows (prefill): keys and values gathered into f32 tiles, then two GEMMs.
#include "kernels/cpu/paged_attention.h"

#include <omp.h>
#include <xmmintrin.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/row_reduce.h"
#include "kernels/elementwise_ops.h"

namespace forge::cpu {
namespace {
using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
constexpr int64_t kRowsPerTask = 32;
constexpr int64_t kDirectRows = 8;  // query rows (rows x group heads) per task on the direct path
constexpr int64_t kLanes = 16;      // the block size the vector paths are written for

// Query rows row0 .. row0+nrows-1 of one sequence, kv heads hk0 .. hk1-1.
struct Task {
  int64_t seq, row0, nrows, hk0, hk1;
};

template <typename T>
struct Cache {
  const PagedAttnShape& s;
  const float* q;
  const T *k, *v;
  const int32_t *block_tables, *query_start, *context_lens;
  float* out;
  int64_t group;
  // Element offset of kv head hk's tiles in block b of the sequence's table: the [D, block_size]
  // key tile in k, the [block_size, D] value tile in v (same size, same place).
  int64_t tile(const int32_t* table, int64_t b, int64_t hk) const {
    return (int64_t(table[b]) * s.Hkv + hk) * s.D * s.block_size;
  }
  // Query/output element offset of row r (of the task), query head h.
  int64_t qrow(const Task& t, int64_t r, int64_t h) const {
    return ((query_start[t.seq] + t.row0 + r) * s.Hq + h) * s.D;
  }
};

// row[0 .. keys) becomes the softmax of its entries [begin, end), zeros elsewhere.
void softmax_row(float* row, int64_t begin, int64_t end, int64_t keys) {
  float* r = row + begin;
  const int64_t n = end - begin;
  const float inv = 1.0f / exp_shifted_sum(r, n, row_max(r, n));
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) r[j] *= inv;
  std::fill(row, r, 0.0f);
  std::fill(row + end, row + keys, 0.0f);
}

// scores of NB 16-lane key tiles at once (NB x 16 floats out): lane l of tile b is q . key l of
// tile b (q already scaled). With NB > 1 the tiles are independent multiply-add chains, where one
// chain would wait on the FMA latency at every d; each score is the same sum in the same order.
// Lanes past the context may hold anything (even NaN); callers never read them.
template <int NB, typename T>
void tile_scores(const float* q, const T* const kt[NB], int64_t D, float* scores) {
  float acc[NB][kLanes] = {};
  for (int64_t d = 0; d < D; ++d) {
    const float qd = q[d];
    for (int b = 0; b < NB; ++b) {
      const T* k = kt[b] + d * kLanes;
#pragma omp simd
      for (int64_t l = 0; l < kLanes; ++l) acc[b][l] += qd * to_f32(k[l]);
    }
  }
  for (int b = 0; b < NB; ++b) std::copy(acc[b], acc[b] + kLanes, scores + b * kLanes);
}

// The same for any block size, one [D, bs] tile.
template <typename T>
void tile_scores_any(const float* q, const T* kt, int64_t D, int64_t bs, float* scores) {
  std::fill(scores, scores + bs, 0.0f);
  for (int64_t d = 0; d < D; ++d)
    for (int64_t l = 0; l < bs; ++l) scores[l] += q[d] * to_f32(kt[d * bs + l]);
}

// out[0 .. D) = sum over keys j in [begin, end) of p[j - base] * value j of kv head hk, where
// base = begin rounded down to a block. NC = D / 16 when the accumulator fits in registers, 0 for
// any D.
template <int NC, typename T>
void weighted_values(const Cache<T>& c, const int32_t* table, int64_t hk, const float* p, int64_t begin,
                     int64_t end, float* out) {
  const int64_t D = c.s.D, bs = c.s.block_size, base = begin / bs * bs;
  if constexpr (NC > 0) {
    // Even and odd keys into separate sums: two chains of multiply-adds per lane instead of one.
    constexpr int64_t W = NC * kLanes;
    float acc[W] = {}, acc2[W] = {};
    for (int64_t j0 = base; j0 < end; j0 += bs) {
      const T* vt = c.v + c.tile(table, j0 / bs, hk);
      const float* pj = p + (j0 - base);
      const int64_t n = std::min(bs, end - j0);
      int64_t l = j0 < begin ? begin - j0 : 0;
      for (; l + 2 <= n; l += 2) {
        const float w = pj[l], w2 = pj[l + 1];
#pragma omp simd
        for (int64_t e = 0; e < W; ++e) {
          acc[e] += w * to_f32(vt[l * W + e]);
          acc2[e] += w2 * to_f32(vt[(l + 1) * W + e]);
        }
      }
      if (l < n) {
        const float w = pj[l];
#pragma omp simd
        for (int64_t e = 0; e < W; ++e) acc[e] += w * to_f32(vt[l * W + e]);
      }
    }
#pragma omp simd
    for (int64_t e = 0; e < W; ++e) out[e] = acc[e] + acc2[e];
  } else {
    std::fill(out, out + D, 0.0f);
    for (int64_t j0 = base; j0 < end; j0 += bs) {
      const T* vt = c.v + c.tile(table, j0 / bs, hk);
      const int64_t n = std::min(bs, end - j0);
      for (int64_t l = j0 < begin ? begin - j0 : 0; l < n; ++l)
        for (int64_t e = 0; e < D; ++e) out[e] += p[j0 - base + l] * to_f32(vt[l * D + e]);
    }
  }
}

// Asks for a value tile to be in L2 by the time the weighted sum reaches it. The direct path
// issues it while it scores the same block: a value tile is a block's other cold 1.5-3 KB, and
// without the hint the weighted sum waits on it after the softmax. A decode step's K/V come from
// memory, pushed out of cache by the weights: with the hint (and the parallel cache write below)
// stories15M's 32-sequence decode steps took 4-6% less time, alternating step by step in one
// process; a cache-hot harness saw no change.
template <typename T>
void prefetch_tile(const T* tile, int64_t elems) {
  const char* a = reinterpret_cast<const char*>(tile);
  for (int64_t x = 0; x < elems * int64_t(sizeof(T)); x += 64) _mm_prefetch(a + x, _MM_HINT_T1);
}

// Direct path: each query row (row, head) scores the blocks it sees, softmax, weighted values.
// p[j - base] holds key j's score, base the row's first visible key rounded down to a block.
template <int NC, typename T>
void attend_direct(const Cache<T>& c, const Task& t, int64_t first_pos, std::vector<float>& p,
                   std::vector<float>& qs) {
  const int64_t D = c.s.D, bs = c.s.block_size;
  const int32_t* table = c.block_tables + t.seq * c.s.max_blocks;
  qs.resize(D);
  for (int64_t hk = t.hk0; hk < t.hk1; ++hk)
    for (int64_t r = 0; r < t.nrows; ++r)
      for (int64_t g = 0; g < c.group; ++g) {
        const int64_t h = hk * c.group + g, visible = first_pos + r + 1;
        const int64_t begin = paged_first_key(c.s, first_pos + r), b0 = begin / bs, base = b0 * bs;
        const int64_t blocks = (visible + bs - 1) / bs;
        p.resize((blocks - b0) * bs);
        const float* qv = c.q + c.qrow(t, r, h);
        for (int64_t d = 0; d < D; ++d) qs[d] = qv[d] * c.s.scale;
        const bool first_of_head = r == 0 && g == 0;  // later rows find the values in cache
        int64_t b = b0;
        if (bs == kLanes) {
          for (; b + 4 <= blocks; b += 4) {
            if (first_of_head)
              for (int64_t j = b; j < b + 4; ++j) prefetch_tile(c.v + c.tile(table, j, hk), D * bs);
            const T* kt[4] = {c.k + c.tile(table, b, hk), c.k + c.tile(table, b + 1, hk), c.k + c.tile(table, b + 2, hk),
                              c.k + c.tile(table, b + 3, hk)};
            tile_scores<4>(qs.data(), kt, D, p.data() + b * bs - base);
          }
          for (; b < blocks; ++b) {
            if (first_of_head) prefetch_tile(c.v + c.tile(table, b, hk), D * bs);
            const T* kt[1] = {c.k + c.tile(table, b, hk)};
            tile_scores<1>(qs.data(), kt, D, p.data() + b * bs - base);
          }
        }
        for (; b < blocks; ++b)
          tile_scores_any(qs.data(), c.k + c.tile(table, b, hk), D, bs, p.data() + b * bs - base);
        if (c.s.softcap > 0) soft_cap(p.data() + (begin - base), visible - begin, c.s.softcap, nullptr);
        softmax_row(p.data(), begin - base, visible - base, visible - base);
        weighted_values<NC>(c, table, hk, p.data(), begin, visible, c.out + c.qrow(t, r, h));
      }
}

struct Tiles {
  RowMat KT, V, Q, S, O;
};

// Gather path (one kv head): K^T [D, keys] and V [keys, D] copied into f32 tiles, then GEMMs.
// Column j of the tiles is key base + j: from the first row's window (rounded down to a block) to
// the last row's position.
template <typename T>
void attend_gathered(const Cache<T>& c, const Task& t, int64_t first_pos, Tiles& w) {
  const int64_t D = c.s.D, bs = c.s.block_size, R = t.nrows * c.group, hk = t.hk0;
  const int64_t base = paged_first_key(c.s, first_pos) / bs * bs;
  const int64_t keys = first_pos + t.nrows - base;  // columns the last row sees
  const int32_t* table = c.block_tables + t.seq * c.s.max_blocks;
  w.KT.resize(D, keys);
  w.V.resize(keys, D);
  for (int64_t j0 = 0; j0 < keys; j0 += bs) {
    const T* kt = c.k + c.tile(table, (base + j0) / bs, hk);
    const T* vt = c.v + c.tile(table, (base + j0) / bs, hk);
    const int64_t n = std::min(bs, keys - j0);
    for (int64_t d = 0; d < D; ++d)
      for (int64_t l = 0; l < n; ++l) w.KT(d, j0 + l) = to_f32(kt[d * bs + l]);
    for (int64_t l = 0; l < n; ++l)
      for (int64_t d = 0; d < D; ++d) w.V(j0 + l, d) = to_f32(vt[l * D + d]);
  }
  w.Q.resize(R, D);  // rows ordered (row, head in group)
  for (int64_t r = 0; r < t.nrows; ++r)
    for (int64_t g = 0; g < c.group; ++g) {
      const float* src = c.q + c.qrow(t, r, hk * c.group + g);
      std::copy(src, src + D, w.Q.row(r * c.group + g).data());
    }
  w.S.noalias() = (w.Q * w.KT) * c.s.scale;
  for (int64_t r = 0; r < t.nrows; ++r) {
    const int64_t begin = paged_first_key(c.s, first_pos + r) - base, end = first_pos + r + 1 - base;
    for (int64_t g = 0; g < c.group; ++g) {
      float* row = w.S.row(r * c.group + g).data();
      if (c.s.softcap > 0) soft_cap(row + begin, end - begin, c.s.softcap, nullptr);
      softmax_row(row, begin, end, keys);
    }
  }
  w.O.noalias() = w.S * w.V;
  for (int64_t r = 0; r < t.nrows; ++r)
    for (int64_t g = 0; g < c.group; ++g) {
      const float* o = w.O.row(r * c.group + g).data();
      std::copy(o, o + D, c.out + c.qrow(t, r, hk * c.group + g));
    }
}

template <int NC, typename T>
void run(const Cache<T>& c) {
  const PagedAttnShape& s = c.s;
  // Sequences with few new rows (decodes) take the direct path, their kv heads cut into enough
  // tasks to keep every thread busy; prefill rows go kRowsPerTask at a time per kv head to GEMMs.
  const int64_t direct_rows = std::max<int64_t>(1, kDirectRows / c.group);
  const int64_t want = 4 * omp_get_max_threads();
  const int64_t head_chunks = std::clamp<int64_t>((want + s.num_seqs - 1) / s.num_seqs, 1, s.Hkv);
  const int64_t per_chunk = (s.Hkv + head_chunks - 1) / head_chunks;
  std::vector<Task> tasks;
  for (int64_t sq = 0; sq < s.num_seqs; ++sq) {
    const int64_t n = c.query_start[sq + 1] - c.query_start[sq];
    if (n <= direct_rows) {
      for (int64_t h = 0; h < s.Hkv; h += per_chunk) tasks.push_back({sq, 0, n, h, std::min(s.Hkv, h + per_chunk)});
      continue;
    }
    for (int64_t hk = 0; hk < s.Hkv; ++hk)
      for (int64_t r = 0; r < n; r += kRowsPerTask) tasks.push_back({sq, r, std::min(kRowsPerTask, n - r), hk, hk + 1});
  }
#pragma omp parallel
  {
    Tiles tiles;
    std::vector<float> p, qs;
#pragma omp for schedule(dynamic)
    for (size_t ti = 0; ti < tasks.size(); ++ti) {
      const Task& t = tasks[ti];
      const int64_t n = c.query_start[t.seq + 1] - c.query_start[t.seq];
      const int64_t first_pos = c.context_lens[t.seq] - n + t.row0;  // position of the task's first row
      if (t.nrows <= direct_rows) attend_direct<NC>(c, t, first_pos, p, qs);
      else attend_gathered(c, t, first_pos, tiles);
    }
  }
}

template <typename T>
void run_typed(const PagedAttnShape& s, const float* q, const void* k, const void* v, const int32_t* bt,
               const int32_t* qs, const int32_t* cl, float* out) {
  const Cache<T> c{s, q, static_cast<const T*>(k), static_cast<const T*>(v), bt, qs, cl, out, s.Hq / s.Hkv};
  switch (s.D % kLanes == 0 ? s.D / kLanes : 0) {  // head dims of 16 .. 128 keep the sum in registers
    case 1: return run<1>(c);
    case 2: return run<2>(c);
    case 3: return run<3>(c);
    case 4: return run<4>(c);
    case 5: return run<5>(c);
    case 6: return run<6>(c);
    case 7: return run<7>(c);
    case 8: return run<8>(c);
    default: return run<0>(c);
  }
}

template <typename T>
void write_typed(int64_t N, int64_t Hkv, int64_t D, int64_t bs, const float* k, const float* v,
                 const int64_t* slots, T* k_cache, T* v_cache) {
  // A token's key lands as D scattered elements of a transposed tile, each its own cache line
  // (and often a miss): a decode step's writes are worth splitting over threads.
#pragma omp parallel for collapse(2) schedule(static) if (N * Hkv * D >= 4096)
  for (int64_t i = 0; i < N; ++i) {
    for (int64_t h = 0; h < Hkv; ++h) {
      const int64_t block = slots[i] / bs, off = slots[i] % bs;
      const float* kr = k + (i * Hkv + h) * D;
      const float* vr = v + (i * Hkv + h) * D;
      T* kt = k_cache + (block * Hkv + h) * D * bs;
      T* vt = v_cache + ((block * Hkv + h) * bs + off) * D;
      for (int64_t d = 0; d < D; ++d) {
        store_f32(kt + d * bs + off, kr[d]);
        store_f32(vt + d, vr[d]);
      }
    }
  }
}
}  // namespace

void paged_attention(const PagedAttnShape& s, const float* q, const void* k_cache, const void* v_cache, DType dt,
                     const int32_t* block_tables, const int32_t* query_start, const int32_t* context_lens,
                     float* out) {
  if (dt == DType::F32)
    run_typed<float>(s, q, k_cache, v_cache, block_tables, query_start, context_lens, out);
  else if (dt == DType::BF16)
    run_typed<bf16>(s, q, k_cache, v_cache, block_tables, query_start, context_lens, out);
  else
    throw std::runtime_error("paged attention: cache must be f32 or bf16");
}

void paged_kv_write(int64_t N, int64_t Hkv, int64_t D, int64_t block_size, const float* k, const float* v,
                    const int64_t* slots, void* k_cache, void* v_cache, DType dt) {
  if (dt == DType::F32)
    write_typed(N, Hkv, D, block_size, k, v, slots, static_cast<float*>(k_cache), static_cast<float*>(v_cache));
  else if (dt == DType::BF16)
    write_typed(N, Hkv, D, block_size, k, v, slots, static_cast<bf16*>(k_cache), static_cast<bf16*>(v_cache));
  else
    throw std::runtime_error("paged_kv_write: cache must be f32 or bf16");
}

}  // namespace forge::cpu
