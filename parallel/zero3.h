// ZeRO stage 3's parameter side (Rajbhandari et al.): between uses, a trainable parameter exists
// only as each dp rank's slice of the flat f32 master space (ZeroOptimizer's). Parameters are
// grouped in units (one decoder layer's, and the "outer" rest: embedding, final norm, head). A
// unit is all-gathered into its parameters just before use and released after:
//   forward: each layer runs under activation checkpointing, so its parameters are released as
//            soon as it returns; the next layer's gather is already in flight (prefetch);
//   backward: the layer is gathered again for its recompute (prefetching the one before it) and
//            released once every parameter of it has received its gradient;
//   the outer unit stays gathered for the step (its gradients come last in backward).
// Released parameters keep their shape, dtype and .grad; only their memory goes.
#pragma once
#include <map>
#include <memory>
#include <vector>

#include "core/tensor.h"
#include "parallel/comm.h"
#include "parallel/grad_sync.h"

namespace forge::parallel {

class ParamShards {
 public:
  static constexpr int kOuter = -1;  // = layer_of (model_parallel.h) of a non-layer parameter
  // params: the trainable parameters in flat-layout order; unit_of: each one's layer (or kOuter),
  // layers being runs of consecutive parameters (the outer parameters may form several runs);
  // master: this rank's f32 slice [lo, hi). The gathers run on a communicator of their own (a
  // copy of dp), so their order never mixes with the gradient buckets' reduce-scatters.
  ParamShards(Communicator& dp, std::vector<Tensor> params, const std::vector<int>& unit_of, const FlatLayout& layout,
              const Tensor& master);
  ParamShards(const ParamShards&) = delete;
  ParamShards& operator=(const ParamShards&) = delete;
  ~ParamShards();

  // Layer i is about to run: gathers it and starts gathering the layer that runs next (i + 1 in
  // forward, i - 1 in a backward recompute). The model's before_layer hook and phantoms call it.
  void enter(int layer, bool backward);
  void gather(int unit);    // waits for its prefetch, or gathers now; no-op when resident
  void prefetch(int unit);  // starts its all-gather; no-op for unknown, resident or in-flight units
  void release(int unit);
  void gather_outer();   // the embedding, final norm and head (kept for the whole step)
  void release_layers();
  void gather_all();
  void release_all();
  // A micro-batch without data over layers [begin, end), for a dp rank that has fewer than the
  // others (every dp rank must start the same collectives in the same order): makes the gathers
  // the model's hooks make in forward now, and those of the recomputes when its output's
  // backward runs. Returns a zero tensor of out_shape recorded on `in` (or on a dummy leaf).
  Tensor phantom(int64_t begin, int64_t end, const Tensor& in, const Shape& out_shape, DType dtype);

 private:
  struct Unit {
    std::vector<size_t> params;
    int64_t a = 0, b = 0;  // flat range
    bool resident = true;
    int pending = 0;       // gradients still to come in this backward
    Tensor send, buf;
    std::unique_ptr<Work> work;
  };
  void on_grad(size_t param);

  std::unique_ptr<Communicator> comm_;
  std::vector<Tensor> params_;
  std::vector<int> unit_of_;
  const FlatLayout& layout_;
  const Tensor& master_;
  std::map<int, Unit> units_;
  std::shared_ptr<ParamShards*> self_;  // hooks hold a copy; cleared on destruction
};

}  // namespace forge::parallel
