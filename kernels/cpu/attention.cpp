// Tiled attention forward/backward (FlashAttention-2 algorithm) with Eigen tile products.
#include "kernels/cpu/attention.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/cpu/row_reduce.h"
#include "kernels/elementwise_ops.h"

namespace forge::cpu {
namespace {
using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using CMap = Eigen::Map<const RowMat, 0, Eigen::OuterStride<>>;
using MMap = Eigen::Map<RowMat, 0, Eigen::OuterStride<>>;
constexpr int64_t Br = 64, Bc = 64;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

bool masked(const AttnShape& s) { return s.causal || s.doc || s.window > 0; }

// Sets masked scores to -inf; returns false when the whole tile is masked.
bool mask_tile(const AttnShape& s, int64_t b, int64_t t0, int64_t nr, int64_t s0, int64_t nc, RowMat& S) {
  bool any = false;
  for (int64_t r = 0; r < nr; ++r) {
    const int64_t i = t0 + r;
    const int32_t di = s.doc ? s.doc[b * s.T + i] : 0;
    int64_t first, last;
    visible_keys(s, i, first, last);
    float* row = S.data() + r * S.cols();
    for (int64_t c = 0; c < nc; ++c) {
      const int64_t j = s0 + c;
      bool ok = j >= first && j < last && !(s.doc && s.doc[b * s.T + j] != di);
      if (!ok) row[c] = kNegInf;
      any |= ok;
    }
  }
  return any;
}

// Key tiles [s_begin, s_end) that queries [t0, t0 + nr) can see: with a window the tiles before
// it are never read, so a long context costs what the window does.
void key_range(const AttnShape& s, int64_t t0, int64_t nr, int64_t& s_begin, int64_t& s_end) {
  int64_t first, last, unused;
  visible_keys(s, t0, first, unused);
  visible_keys(s, t0 + nr - 1, unused, last);
  s_begin = first / Bc * Bc;  // tiles stay aligned, as backward's are
  s_end = std::max<int64_t>(last, 0);
}
}  // namespace

void attention_fwd(const AttnShape& s, const float* q, AttnStrides qs, const float* k, AttnStrides ks,
                   const float* v, AttnStrides vs, float* o, float* lse) {
  const int64_t group = s.Hq / s.Hkv, D = s.D;
  const int64_t ntiles = (s.T + Br - 1) / Br;
#pragma omp parallel
  {
    RowMat S(Br, Bc), acc(Br, D);
    std::vector<float> m(Br), l(Br);
#pragma omp for collapse(3) schedule(dynamic)
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t h = 0; h < s.Hq; ++h)
        for (int64_t ti = 0; ti < ntiles; ++ti) {
          const int64_t t0 = ti * Br, nr = std::min(Br, s.T - t0), hk = h / group;
          CMap Q(q + b * qs.b + h * qs.h + t0 * qs.l, nr, D, Eigen::OuterStride<>(qs.l));
          std::fill(m.begin(), m.end(), kNegInf);
          std::fill(l.begin(), l.end(), 0.0f);
          acc.topRows(nr).setZero();
          int64_t s_begin, s_end;
          key_range(s, t0, nr, s_begin, s_end);
          for (int64_t s0 = s_begin; s0 < s_end; s0 += Bc) {
            const int64_t nc = std::min(Bc, s_end - s0);
            CMap K(k + b * ks.b + hk * ks.h + s0 * ks.l, nc, D, Eigen::OuterStride<>(ks.l));
            CMap V(v + b * vs.b + hk * vs.h + s0 * vs.l, nc, D, Eigen::OuterStride<>(vs.l));
            auto St = S.topLeftCorner(nr, nc);
            St.noalias() = (Q * K.transpose()) * s.scale;
            if (s.softcap > 0)
              for (int64_t r = 0; r < nr; ++r) soft_cap(S.data() + r * Bc, nc, s.softcap, nullptr);
            if (masked(s) && !mask_tile(s, b, t0, nr, s0, nc, S)) continue;
            for (int64_t r = 0; r < nr; ++r) {
              float* row = S.data() + r * Bc;
              const float mx = row_max(row, nc, m[r]);
              if (mx == kNegInf) {  // nothing visible yet in this row
                for (int64_t c = 0; c < nc; ++c) row[c] = 0.0f;
                continue;
              }
              const float corr = exp_f32(m[r] - mx);
              const float sum = exp_shifted_sum(row, nc, mx);
              l[r] = l[r] * corr + sum;
              m[r] = mx;
              if (corr != 1.0f) acc.row(r) *= corr;
            }
            acc.topRows(nr).noalias() += St * V;
          }
          for (int64_t r = 0; r < nr; ++r) {
            const int64_t i = t0 + r;
            float* orow = o + ((b * s.Hq + h) * s.T + i) * D;
            const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
            for (int64_t d = 0; d < D; ++d) orow[d] = acc(r, d) * inv;
            lse[(b * s.Hq + h) * s.T + i] = l[r] > 0.0f ? m[r] + std::log(l[r]) : kNegInf;
          }
        }
  }
}

void attention_bwd(const AttnShape& s, const float* q, AttnStrides qs, const float* k, AttnStrides ks,
                   const float* v, AttnStrides vs, const float* o, const float* dout, const float* lse, float* dq,
                   float* dk, float* dv) {
  const int64_t group = s.Hq / s.Hkv, D = s.D, T = s.T, Sk = s.S;
  // Di = rowsum(dO * O), one per query row.
  std::vector<float> Di(size_t(s.B * s.Hq * T));
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < s.B * s.Hq * T; ++r) {
    float acc = 0.0f;
    for (int64_t d = 0; d < D; ++d) acc += o[r * D + d] * dout[r * D + d];
    Di[r] = acc;
  }
  // One thread owns a (batch, kv head): it writes dk/dv of that head and dq of its query heads.
#pragma omp parallel
  {
    RowMat P(Br, Bc), dP(Br, Bc), dK(Bc, D), dV(Bc, D), capd(s.softcap > 0 ? Br : 0, Bc);
#pragma omp for collapse(2) schedule(dynamic)
    for (int64_t b = 0; b < s.B; ++b)
      for (int64_t hk = 0; hk < s.Hkv; ++hk) {
        for (int64_t h = hk * group; h < (hk + 1) * group; ++h)
          std::fill(dq + (b * s.Hq + h) * T * D, dq + (b * s.Hq + h + 1) * T * D, 0.0f);
        for (int64_t s0 = 0; s0 < Sk; s0 += Bc) {
          const int64_t nc = std::min(Bc, Sk - s0);
          CMap K(k + b * ks.b + hk * ks.h + s0 * ks.l, nc, D, Eigen::OuterStride<>(ks.l));
          CMap V(v + b * vs.b + hk * vs.h + s0 * vs.l, nc, D, Eigen::OuterStride<>(vs.l));
          dK.topRows(nc).setZero();
          dV.topRows(nc).setZero();
          // The query tiles that can see keys [s0, s0 + nc): from the first whose position reaches
          // s0 to the last whose window still reaches s0 + nc - 1.
          int64_t t_first = s.causal ? std::max<int64_t>(0, s0 - (Sk - T)) : 0;
          t_first = (t_first / Br) * Br;
          const int64_t t_end =
              s.causal && s.window > 0 ? std::min<int64_t>(T, s0 + nc - 1 + s.window - (Sk - T)) : T;
          for (int64_t h = hk * group; h < (hk + 1) * group; ++h) {
            const int64_t row0 = (b * s.Hq + h) * T;
            for (int64_t t0 = t_first; t0 < t_end; t0 += Br) {
              const int64_t nr = std::min(Br, T - t0);
              CMap Q(q + b * qs.b + h * qs.h + t0 * qs.l, nr, D, Eigen::OuterStride<>(qs.l));
              CMap dO(dout + (row0 + t0) * D, nr, D, Eigen::OuterStride<>(D));
              MMap dQ(dq + (row0 + t0) * D, nr, D, Eigen::OuterStride<>(D));
              auto Pt = P.topLeftCorner(nr, nc);
              Pt.noalias() = (Q * K.transpose()) * s.scale;
              if (s.softcap > 0)
                for (int64_t r = 0; r < nr; ++r) soft_cap(P.data() + r * Bc, nc, s.softcap, capd.data() + r * Bc);
              if (masked(s) && !mask_tile(s, b, t0, nr, s0, nc, P)) continue;
              for (int64_t r = 0; r < nr; ++r) {
                const float L = lse[row0 + t0 + r];
                float* row = P.data() + r * Bc;
                for (int64_t c = 0; c < nc; ++c) row[c] = L == kNegInf ? 0.0f : exp_f32(row[c] - L);
              }
              dV.topRows(nc).noalias() += Pt.transpose() * dO;
              auto dPt = dP.topLeftCorner(nr, nc);
              dPt.noalias() = dO * V.transpose();
              for (int64_t r = 0; r < nr; ++r) {
                const float di = Di[row0 + t0 + r];
                float* pr = P.data() + r * Bc;
                float* dr = dP.data() + r * Bc;
                for (int64_t c = 0; c < nc; ++c) dr[c] = pr[c] * (dr[c] - di) * s.scale;  // dS * scale
                if (s.softcap > 0)  // through the cap: times 1 - tanh^2
                  for (int64_t c = 0; c < nc; ++c) dr[c] *= capd(r, c);
              }
              dQ.noalias() += dPt * K;
              dK.topRows(nc).noalias() += dPt.transpose() * Q;
            }
          }
          MMap(dk + ((b * s.Hkv + hk) * Sk + s0) * D, nc, D, Eigen::OuterStride<>(D)) = dK.topRows(nc);
          MMap(dv + ((b * s.Hkv + hk) * Sk + s0) * D, nc, D, Eigen::OuterStride<>(D)) = dV.topRows(nc);
        }
      }
  }
}

}  // namespace forge::cpu
