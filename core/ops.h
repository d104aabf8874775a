// The op set. Every op here is differentiable where that makes sense; its forward and its
// backward rule live together in one file of core/ops/ (named in the section titles).
// Dimension letters: B batch, T time (query tokens), S key tokens, H heads, D head dim,
// C channels, V vocabulary, N rows.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/random.h"
#include "core/tensor.h"

namespace forge {

// ---- elementwise (ops/elementwise.cpp): broadcasting, dtype promotion ----------------------
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double s);
Tensor mul(const Tensor& a, double s);
Tensor pow(const Tensor& a, double s);
Tensor rsub(double s, const Tensor& a);  // s - a
Tensor rdiv(double s, const Tensor& a);  // s / a
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor log_sigmoid(const Tensor& x);  // log(sigmoid(x)), finite for any finite x
Tensor tanh(const Tensor& x);
Tensor silu(const Tensor& x);
Tensor gelu(const Tensor& x, bool tanh_approximation = false);
Tensor abs(const Tensor& x);
Tensor square(const Tensor& x);

// Comparisons give u8 (0/1) and carry no gradient.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);

// cond is u8; a and b broadcast against it.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);

// In-place, not recorded (optimisers, gradient buffers): self = self op other.
Tensor& add_(Tensor& self, const Tensor& other, double alpha = 1.0);
Tensor& mul_(Tensor& self, double s);

// ---- reductions (ops/reduce.cpp): dims empty = all dims; f32 accumulation -------------------
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Maximum over dims (torch.amax): the gradient is shared evenly between tied maxima.
Tensor max(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);

// ---- matrix products (ops/matmul.cpp) ---------------------------------------------------------
// a [..., M, K] @ b [..., K, N] with broadcast batch dims; transposed views need no copies.
Tensor matmul(const Tensor& a, const Tensor& b);
// x [..., in] @ w[out, in]^T + b[out] (the nn.Linear layout).
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b = Tensor());
// Inference twin of linear for decode steps (kernels/cpu/packed_gemm.h): the f32 or bf16 weight
// packed once into panels, then x @ w^T + b from them, each output the same bits whatever the batch.
Tensor pack_linear_weight(const Tensor& w);
Tensor linear_packed(const Tensor& x, const Tensor& packed, int64_t out_features, const Tensor& b = Tensor());

// ---- softmax family (ops/softmax.cpp) -----------------------------------------------------------
Tensor softmax(const Tensor& x, int64_t dim = -1);
Tensor log_softmax(const Tensor& x, int64_t dim = -1);
enum class Reduction { Mean, Sum, None };
// logits [N, V] (any float dtype), target [N] i32/i64. Mean divides by the number of targets
// that are not ignore_index. Accumulates in f32; the result is f32.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, int64_t ignore_index = -100,
                     Reduction reduction = Reduction::Mean);

// ---- layers (ops/layers.cpp) -------------------------------------------------------------------
// weight [V, C], ids [...] i32/i64 -> [..., C]; backward scatter-adds into weight rows.
Tensor embedding(const Tensor& weight, const Tensor& ids);
// x [..., C] * rsqrt(mean(x^2) + eps) * weight [C], computed in f32 (HF LlamaRMSNorm); unit_offset:
// times (1 + weight), rounded once (GemmaRMSNorm, whose weights start at zero).
Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps, bool unit_offset = false);
// Rotary embedding, HF rotate_half convention: x [B, H, T, D], positions [B, T] or [T] (int),
// inv_freq [R/2] f32 with R <= D. The first R dims of each head: y = x * cos + rotate_half(x) * sin
// with angle = position * inv_freq, times mscale (yarn / longrope's attention factor on cos and
// sin); the rest pass through unscaled (partial rotary, as Phi-3's).
Tensor rope(const Tensor& x, const Tensor& positions, const Tensor& inv_freq, double mscale = 1.0);
// Zeroes each element with probability p and scales the rest by 1/(1-p); identity if !train.
Tensor dropout(const Tensor& x, double p, bool train = true, Generator* gen = nullptr);

// ---- attention (ops/attention.cpp) -------------------------------------------------------------
struct AttentionOptions {
  bool causal = true;
  Tensor doc_ids;                 // optional [B, T] i32: no attention across documents (T == S)
  std::optional<double> scale;    // default 1/sqrt(D)
  int64_t window = 0;             // sliding window: a query sees this many keys, itself included (0: all)
  double softcap = 0;             // Gemma 2: scaled scores s become softcap * tanh(s / softcap) (0: none)
};
// q [B, Hq, T, D], k/v [B, Hkv, S, D] with Hq % Hkv == 0 (grouped-query). Causal aligns the
// last query with the last key. Computed in tiles: never more than a tile of scores at once.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const AttentionOptions& opt = {});

// ---- attention over a paged KV cache (ops/paged_attention.cpp); inference, no autograd -------
// Where a serving step's packed tokens (rows of several sequences, one after another) sit.
struct PagedBatch {
  Tensor slots;         // [N] i64: cache slot (block * block_size + offset) of each new token
  Tensor block_tables;  // [S, max_blocks] i32; unused entries 0 (the reserved null block)
  Tensor query_start;   // [S + 1] i32: sequence s owns rows query_start[s] .. query_start[s+1]-1
  Tensor context_lens;  // [S] i32: tokens of each sequence in the cache after this step
  Tensor row_seq;       // [N] i32: the sequence of each row
};
// Writes k, v [N, Hkv, D] into caches [num_blocks, block_size, Hkv, D] at b.slots.
void paged_kv_write(const Tensor& k_cache, const Tensor& v_cache, const Tensor& k, const Tensor& v,
                    const PagedBatch& b);
// q [N, Hq, D] -> [N, Hq, D]: each row attends causally to its sequence's cached keys, or with a
// sliding window to its last `opt.window` (itself included; cache blocks before it are never read).
// opt's scale and softcap as in scaled_dot_product_attention; it must be causal, without doc_ids.
Tensor paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const PagedBatch& b,
                       const AttentionOptions& opt = {});

// ---- quantised weights (ops/quant.cpp); no autograd ------------------------------------------
// QLoRA's NF4 weight (kernels/cpu/nf4.h) as a dense [rows, cols] tensor in dtype (f32 or bf16), on
// the device of its parts: codes u8 [ceil(n / 2)], absmax_q [n / 64 blocks] (int8 bits in u8),
// factor f32 [blocks / 256].
Tensor nf4_dequantize(const Tensor& codes, const Tensor& absmax_q, const Tensor& factor, float mean,
                      const Shape& shape, DType dtype);

// ---- fused optimiser kernels (ops/optim.cpp); no autograd -------------------------------------
// One AdamW step for many parameters at once (kernels/*/optim: one pass over each, a GPU launch per
// few dozen): p32 (the f32 parameter or its master), exp_avg and exp_avg_sq are updated in place
// from grad (any float dtype, times grad_scale and, when defined, the f32 [1] `scale` on the
// parameters' device: a clip factor that stays there); lowp, when defined, is the bf16/f16
// parameter the master is rounded into. step is t of the bias corrections 1 - beta^t.
struct AdamWParam {
  Tensor p32, grad, exp_avg, exp_avg_sq, lowp;
};
void adamw_step_(const std::vector<AdamWParam>& ps, double lr, double beta1, double beta2, double eps,
                 double weight_decay, int64_t step, double grad_scale = 1.0, const Tensor& scale = Tensor());
// The sum of squares of each tensor, as one f32 [n] tensor on their device (a gradient norm's parts).
Tensor sum_squares(const std::vector<Tensor>& xs);

// ---- joining and splitting (ops/join.cpp) ------------------------------------------------------
Tensor cat(const std::vector<Tensor>& xs, int64_t dim = 0);
Tensor stack(const std::vector<Tensor>& xs, int64_t dim = 0);
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim = 0);  // views
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim = 0);

// ---- misc ---------------------------------------------------------------------------------------
inline Tensor cast(const Tensor& x, DType dtype) { return x.to(dtype); }
Tensor zeros_like(const Tensor& x);
Tensor ones_like(const Tensor& x);
// Largest |a - b| / (atol + rtol * |b|) style check used by tests and benches.
bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8);

}  // namespace forge
