// Paged attention on the CPU: per (sequence, kv head, chunk of query rows) the visible keys and
// values are gathered from their blocks into f32 tiles, then one GEMM gives the scores of every
// query head of the group, a masked softmax, and one GEMM the outputs.
#include "kernels/cpu/paged_attention.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

namespace forge::cpu {
namespace {
using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
constexpr int64_t kRowsPerTask = 32;

float load(const void* p, DType dt, int64_t i) {
  return dt == DType::F32 ? static_cast<const float*>(p)[i] : to_f32(static_cast<const bf16*>(p)[i]);
}
void store(void* p, DType dt, int64_t i, float x) {
  if (dt == DType::F32) static_cast<float*>(p)[i] = x;
  else static_cast<bf16*>(p)[i] = to_bf16(x);
}

struct Task {
  int64_t seq, hk, row0, nrows;
};
}  // namespace

void paged_attention(const PagedAttnShape& s, const float* q, const void* k_cache, const void* v_cache, DType dt,
                     const int32_t* block_tables, const int32_t* query_start, const int32_t* context_lens,
                     float* out) {
  if (dt != DType::F32 && dt != DType::BF16) throw std::runtime_error("paged attention: cache must be f32 or bf16");
  const int64_t group = s.Hq / s.Hkv, D = s.D, bs = s.block_size;
  std::vector<Task> tasks;
  for (int64_t sq = 0; sq < s.num_seqs; ++sq) {
    const int64_t n = query_start[sq + 1] - query_start[sq];
    for (int64_t hk = 0; hk < s.Hkv; ++hk)
      for (int64_t r = 0; r < n; r += kRowsPerTask) tasks.push_back({sq, hk, r, std::min(kRowsPerTask, n - r)});
  }
#pragma omp parallel
  {
    RowMat K, V, Q, S, O;
#pragma omp for schedule(dynamic)
    for (size_t ti = 0; ti < tasks.size(); ++ti) {
      const Task& t = tasks[ti];
      const int64_t n = query_start[t.seq + 1] - query_start[t.seq];
      const int64_t ctx = context_lens[t.seq];
      const int64_t first_pos = ctx - n + t.row0;           // position of the task's first row
      const int64_t keys = first_pos + t.nrows;             // keys the last row sees
      const int32_t* table = block_tables + t.seq * s.max_blocks;
      K.resize(keys, D);
      V.resize(keys, D);
      for (int64_t j = 0; j < keys; ++j) {
        const int64_t slot = int64_t(table[j / bs]) * bs + j % bs;
        const int64_t base = (slot * s.Hkv + t.hk) * D;
        for (int64_t d = 0; d < D; ++d) {
          K(j, d) = load(k_cache, dt, base + d);
          V(j, d) = load(v_cache, dt, base + d);
        }
      }
      // Q rows ordered (row, head in group); row r of the task is global row query_start + row0 + r.
      const int64_t R = t.nrows * group;
      Q.resize(R, D);
      for (int64_t r = 0; r < t.nrows; ++r)
        for (int64_t g = 0; g < group; ++g) {
          const float* src = q + ((query_start[t.seq] + t.row0 + r) * s.Hq + t.hk * group + g) * D;
          std::copy(src, src + D, Q.row(r * group + g).data());
        }
      S.noalias() = (Q * K.transpose()) * s.scale;
      for (int64_t r = 0; r < t.nrows; ++r) {
        const int64_t visible = first_pos + r + 1;
        for (int64_t g = 0; g < group; ++g) {
          float* row = S.row(r * group + g).data();
          float mx = -std::numeric_limits<float>::infinity();
          for (int64_t j = 0; j < visible; ++j) mx = std::max(mx, row[j]);
          float sum = 0;
          for (int64_t j = 0; j < visible; ++j) sum += row[j] = std::exp(row[j] - mx);
          const float inv = 1.0f / sum;
          for (int64_t j = 0; j < visible; ++j) row[j] *= inv;
          for (int64_t j = visible; j < keys; ++j) row[j] = 0.0f;
        }
      }
      O.noalias() = S * V;
      for (int64_t r = 0; r < t.nrows; ++r)
        for (int64_t g = 0; g < group; ++g) {
          float* dst = out + ((query_start[t.seq] + t.row0 + r) * s.Hq + t.hk * group + g) * D;
          std::copy(O.row(r * group + g).data(), O.row(r * group + g).data() + D, dst);
        }
    }
  }
}

void paged_kv_write(int64_t N, int64_t Hkv, int64_t D, const float* k, const float* v, const int64_t* slots,
                    void* k_cache, void* v_cache, DType dt) {
  const int64_t row = Hkv * D;
  for (int64_t i = 0; i < N; ++i)
    for (int64_t e = 0; e < row; ++e) {
      store(k_cache, dt, slots[i] * row + e, k[i * row + e]);
      store(v_cache, dt, slots[i] * row + e, v[i * row + e]);
    }
}

}  // namespace forge::cpu
