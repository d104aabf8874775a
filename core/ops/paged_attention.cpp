// Paged-KV attention for serving: shape checks and CPU/CUDA dispatch (kernels/*/paged_attention).
#include <cmath>

#include "core/ops.h"
#include "core/ops/common.h"
#include "kernels/cpu/paged_attention.h"
#include "kernels/cuda/cuda_backend.h"

namespace forge {
namespace {
// k_cache [num_blocks, Hkv, D, block_size] (keys transposed per block and head), v_cache
// [num_blocks, Hkv, block_size, D]; see kernels/cpu/paged_attention.h.
void check_cache(const Tensor& k_cache, const Tensor& v_cache) {
  const Shape& v = v_cache.shape();
  const Shape k_want = v.size() == 4 ? Shape{v[0], v[1], v[3], v[2]} : Shape{};
  FORGE_CHECK(v_cache.dim() == 4 && k_cache.shape() == k_want && k_cache.is_contiguous() &&
                  v_cache.is_contiguous() && k_cache.dtype() == v_cache.dtype(),
              "paged attention: caches must be contiguous k [num_blocks, Hkv, D, block_size] and v [num_blocks, "
              "Hkv, block_size, D], got ",
              shape_str(k_cache.shape()), " and ", shape_str(v_cache.shape()));
  FORGE_CHECK(k_cache.dtype() == DType::F32 || k_cache.dtype() == DType::BF16,
              "paged attention: the cache must be f32 or bf16");
}
Tensor f32_dense(const Tensor& t) { return t.to(DType::F32).contiguous(); }
Tensor on(const Tensor& t, Device d) { return t.device() == d ? t.contiguous() : t.to(d).contiguous(); }
}  // namespace

void paged_kv_write(const Tensor& k_cache, const Tensor& v_cache, const Tensor& k, const Tensor& v,
                    const PagedBatch& b) {
  check_cache(k_cache, v_cache);
  const int64_t N = k.size(0), Hkv = v_cache.size(1), bs = v_cache.size(2), D = v_cache.size(3);
  FORGE_CHECK(k.dim() == 3 && k.size(1) == Hkv && k.size(2) == D && v.shape() == k.shape(),
              "paged_kv_write: k, v must be [N, ", Hkv, ", ", D, "], got ", shape_str(k.shape()));
  FORGE_CHECK(b.slots.numel() == N, "paged_kv_write: ", b.slots.numel(), " slots for ", N, " tokens");
  Tensor kf = f32_dense(k), vf = f32_dense(v);
  const Device dev = k_cache.device();
  Tensor slots = on(b.slots.to(DType::I64), dev);
  if (dev.is_cuda())
    cuda::paged_kv_write(k_cache.dtype(), N, Hkv, D, bs, kf.data<float>(), vf.data<float>(), slots.data<int64_t>(),
                         k_cache.raw_data(), v_cache.raw_data(), dev.index);
  else
    cpu::paged_kv_write(N, Hkv, D, bs, kf.data<float>(), vf.data<float>(), slots.data<int64_t>(), k_cache.raw_data(),
                        v_cache.raw_data(), k_cache.dtype());
}

Tensor paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const PagedBatch& b,
                       const AttentionOptions& opt) {
  check_cache(k_cache, v_cache);
  const int64_t N = q.size(0), Hq = q.size(1), D = q.size(2), Hkv = v_cache.size(1), bs = v_cache.size(2);
  FORGE_CHECK(q.dim() == 3 && v_cache.size(3) == D && Hq % Hkv == 0, "paged attention: q ", shape_str(q.shape()),
              " does not fit the cache ", shape_str(k_cache.shape()));
  const int64_t S = b.context_lens.numel();
  FORGE_CHECK(b.block_tables.dim() == 2 && b.block_tables.size(0) == S && b.query_start.numel() == S + 1,
              "paged attention: block_tables [", S, ", max_blocks] and query_start [", S + 1, "] expected");
  const Device dev = q.device();
  Tensor qf = f32_dense(q);
  Tensor bt = on(b.block_tables.to(DType::I32), dev), qs = on(b.query_start.to(DType::I32), dev),
         cl = on(b.context_lens.to(DType::I32), dev);
  Tensor out = Tensor::empty({N, Hq, D}, DType::F32, dev);
  FORGE_CHECK(opt.causal && !opt.doc_ids.defined() && opt.window >= 0 && opt.softcap >= 0,
              "paged attention: causal, no documents, window and softcap >= 0 expected");
  const float sc = float(opt.scale ? *opt.scale : 1.0 / std::sqrt(double(D)));
  const cpu::PagedAttnShape sh{S, Hq, Hkv, D, bs, bt.size(1), sc, opt.window, float(opt.softcap)};
  if (dev.is_cuda()) {
    Tensor rs = on(b.row_seq.to(DType::I32), dev);
    cuda::paged_attention(k_cache.dtype(), N, sh, qf.data<float>(), k_cache.raw_data(), v_cache.raw_data(),
                          bt.data<int32_t>(), qs.data<int32_t>(), cl.data<int32_t>(), rs.data<int32_t>(),
                          out.data<float>(), dev.index);
  } else {
    FORGE_CHECK(qs.data<int32_t>()[S] == N, "paged attention: query_start ends at ", qs.data<int32_t>()[S],
                ", not at ", N, " rows");
    cpu::paged_attention(sh, qf.data<float>(), k_cache.raw_data(), v_cache.raw_data(), k_cache.dtype(),
                         bt.data<int32_t>(), qs.data<int32_t>(), cl.data<int32_t>(), out.data<float>());
  }
  return q.dtype() == DType::F32 ? out : out.to(q.dtype());
}

}  // namespace forge
