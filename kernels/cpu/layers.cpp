// Embedding gather/scatter, RMSNorm forward/backward, rotary embedding.
#include "kernels/cpu/layers.h"

#include <omp.h>

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "kernels/cpu/row_reduce.h"

namespace forge::cpu {

void embedding_fwd(DType dt, const void* weight, int64_t s_row, int64_t s_col, const int64_t* ids, int64_t N,
                   int64_t C, void* out) {
  const size_t es = dt == DType::F32 ? 4 : 2, row = size_t(C) * es;
  const char* w = static_cast<const char*>(weight);
  char* o = static_cast<char*>(out);
  if (s_col == 1) {
#pragma omp parallel for schedule(static) if (N * C > 65536)
    for (int64_t n = 0; n < N; ++n) std::memcpy(o + n * row, w + ids[n] * s_row * int64_t(es), row);
    return;
  }
  // A column-major table (serving stores a tied embedding as the LM head's W^T): gather by element.
#pragma omp parallel for schedule(static) if (N * C > 65536)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      std::memcpy(o + (n * C + c) * int64_t(es), w + (ids[n] * s_row + c * s_col) * int64_t(es), es);
}

void embedding_bwd(DType dt, const void* g, const int64_t* ids, int64_t N, int64_t C, float* gw) {
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    const T* gs = static_cast<const T*>(g);
    // Threads own disjoint column bands, so rows repeated in ids never race.
#pragma omp parallel if (N * C > 65536)
    {
      int t = omp_get_thread_num(), nt = omp_get_num_threads();
      int64_t c0 = C * t / nt, c1 = C * (t + 1) / nt;
      for (int64_t n = 0; n < N; ++n) {
        float* dst = gw + ids[n] * C;
        const T* src = gs + n * C;
        for (int64_t c = c0; c < c1; ++c) dst[c] += load_f32(src + c);
      }
    }
  });
}

void rms_norm_fwd(DType dt, const void* x, const void* w, int64_t N, int64_t C, float eps, bool unit_offset, void* y,
                  float* rstd) {
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    const T* xs = static_cast<const T*>(x);
    const T* ws = static_cast<const T*>(w);
    T* ys = static_cast<T*>(y);
#pragma omp parallel for schedule(static) if (N * C > 32768 && N > 1)
    for (int64_t n = 0; n < N; ++n) {
      const T* xr = xs + n * C;
      T* yr = ys + n * C;
      const float r = 1.0f / std::sqrt(row_sum_squares(xr, C) / float(C) + eps);
      rstd[n] = r;
      if (unit_offset) {
        for (int64_t c = 0; c < C; ++c) store_f32(yr + c, load_f32(xr + c) * r * (1.0f + load_f32(ws + c)));
        continue;
      }
      for (int64_t c = 0; c < C; ++c) {
        T xh;
        store_f32(&xh, load_f32(xr + c) * r);
        store_f32(yr + c, load_f32(&xh) * load_f32(ws + c));
      }
    }
  });
}

void rms_norm_bwd(DType dt, const void* x, const void* w, const float* rstd, const void* g, int64_t N, int64_t C,
                  bool unit_offset, void* dx, float* dw) {
  const float off = unit_offset ? 1.0f : 0.0f;  // the weight the forward multiplied by is off + w
  dispatch_float(dt, [&](auto tag) {
    using T = decltype(tag);
    const T* xs = static_cast<const T*>(x);
    const T* ws = static_cast<const T*>(w);
    const T* gs = static_cast<const T*>(g);
    T* dxs = static_cast<T*>(dx);
    int nt = (N * C > 32768) ? omp_get_max_threads() : 1;
    std::vector<float> partial(size_t(nt) * C, 0.0f);
#pragma omp parallel num_threads(nt)
    {
      float* dwp = partial.data() + size_t(omp_get_thread_num()) * C;
#pragma omp for schedule(static)
      for (int64_t n = 0; n < N; ++n) {
        const T* xr = xs + n * C;
        const T* gr = gs + n * C;
        const float r = rstd[n];
        // dot = mean over c of (g*w) * xh, summed in lanes so the loop is vector code.
        float lane[kReduceLanes] = {};
        int64_t c = 0;
        for (; c + kReduceLanes <= C; c += kReduceLanes)
#pragma omp simd
          for (int l = 0; l < kReduceLanes; ++l) {
            const float xh = load_f32(xr + c + l) * r, gv = load_f32(gr + c + l);
            lane[l] += gv * (off + load_f32(ws + c + l)) * xh;
            dwp[c + l] += gv * xh;
          }
        for (int l = 0; c < C; ++c, ++l) {
          const float xh = load_f32(xr + c) * r, gv = load_f32(gr + c);
          lane[l] += gv * (off + load_f32(ws + c)) * xh;
          dwp[c] += gv * xh;
        }
        float dot = 0.0f;
        for (float v : lane) dot += v;
        dot /= float(C);
        T* dr = dxs + n * C;
        for (int64_t c = 0; c < C; ++c) {
          float xh = load_f32(xr + c) * r;
          store_f32(dr + c, r * (load_f32(gr + c) * (off + load_f32(ws + c)) - xh * dot));
        }
      }
    }
    for (int64_t c = 0; c < C; ++c) {
      float s = 0.0f;
      for (int t = 0; t < nt; ++t) s += partial[size_t(t) * C + c];
      dw[c] = s;
    }
  });
}

void rope(DType dt, const void* x, int64_t B, int64_t H, int64_t T, int64_t D, int64_t R, int64_t sb, int64_t sh,
          int64_t st,
          const int64_t* pos, int64_t pos_sb, const float* inv_freq, float sign, float mscale, void* y) {
  const int64_t half = R / 2;
  dispatch_float(dt, [&](auto tag) {
    using Ty = decltype(tag);
    const Ty* xs = static_cast<const Ty*>(x);
    Ty* ys = static_cast<Ty*>(y);
#pragma omp parallel for collapse(2) schedule(static) if (B * H * T * D > 32768)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t) {
        float cs[512], sn[512];
        const float p = float(pos[b * pos_sb + t]);
        for (int64_t i = 0; i < half; ++i) {
          float a = p * inv_freq[i];
          cs[i] = mscale * std::cos(a);
          sn[i] = mscale * sign * std::sin(a);
        }
        for (int64_t h = 0; h < H; ++h) {
          const Ty* xr = xs + b * sb + h * sh + t * st;
          Ty* yr = ys + ((b * H + h) * T + t) * D;
          for (int64_t i = 0; i < half; ++i) {
            float x1 = load_f32(xr + i), x2 = load_f32(xr + i + half);
            store_f32(yr + i, x1 * cs[i] - x2 * sn[i]);
            store_f32(yr + i + half, x2 * cs[i] + x1 * sn[i]);
          }
          for (int64_t i = R; i < D; ++i) yr[i] = xr[i];  // partial rotary: the rest as it is
        }
      }
  });
}

}  // namespace forge::cpu
