// N-d strided iteration with dimension coalescing and OpenMP over rows: the one loop that every
// CPU elementwise kernel is written on. Strides and offsets are in elements, per operand.
#pragma once
#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdint>

namespace forge::cpu {

constexpr int kMaxDims = 12;
constexpr int64_t kParallelGrain = 32768;  // elements below which a loop stays on one thread

// inner(off, inc, n): off[k] is operand k's element offset of a row start, inc[k] its stride
// along the row, n the row length. Called concurrently from several threads for disjoint rows.
template <int N, class Inner>
void strided_loop(int ndim, const int64_t* shape, const std::array<const int64_t*, N>& strides,
                  Inner&& inner) {
  // Coalesce: drop size-1 dims, merge dim i into i+1 when every operand is contiguous across them.
  int64_t sh[kMaxDims];
  int64_t st[N][kMaxDims];
  int nd = 0;
  int64_t numel = 1;
  for (int d = 0; d < ndim; ++d) {
    numel *= shape[d];
    if (shape[d] == 1) continue;
    if (nd > 0) {
      bool merge = true;
      for (int k = 0; k < N; ++k) merge &= strides[k][d] * shape[d] == st[k][nd - 1];
      if (merge) {
        sh[nd - 1] *= shape[d];
        for (int k = 0; k < N; ++k) st[k][nd - 1] = strides[k][d];
        continue;
      }
    }
    sh[nd] = shape[d];
    for (int k = 0; k < N; ++k) st[k][nd] = strides[k][d];
    ++nd;
  }
  if (numel == 0) return;
  if (nd == 0) {  // a single element
    int64_t off[N] = {}, inc[N] = {};
    inner(off, inc, 1);
    return;
  }
  const int64_t n = sh[nd - 1];
  int64_t inc[N];
  for (int k = 0; k < N; ++k) inc[k] = st[k][nd - 1];
  int64_t rows = numel / n;
  int nthreads = numel < kParallelGrain ? 1 : omp_get_max_threads();

  if (rows == 1) {  // one long row: split it into chunks
    int64_t chunk = std::max<int64_t>((n + nthreads - 1) / nthreads, 1);
#pragma omp parallel for num_threads(nthreads) schedule(static) if (nthreads > 1)
    for (int64_t c = 0; c < n; c += chunk) {
      int64_t off[N];
      for (int k = 0; k < N; ++k) off[k] = c * inc[k];
      inner(off, inc, std::min(chunk, n - c));
    }
    return;
  }
#pragma omp parallel for num_threads(nthreads) schedule(static) if (nthreads > 1)
  for (int64_t r = 0; r < rows; ++r) {
    int64_t off[N] = {};
    int64_t rem = r;
    for (int d = nd - 2; d >= 0; --d) {
      int64_t i = rem % sh[d];
      rem /= sh[d];
      for (int k = 0; k < N; ++k) off[k] += i * st[k][d];
    }
    inner(off, inc, n);
  }
}

}  // namespace forge::cpu
