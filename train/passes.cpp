// Pipeline passes over micro-batches with a method's head (see method.h).
#include "core/autograd.h"
#include "core/ops.h"
#include "models/pretrained.h"
#include "parallel/pipeline.h"
#include "train/method.h"

namespace forge::train {
namespace {

// This rank's stage of the model on one micro-batch: its layers, from the ids on the first stage
// or from the previous stage's activation `in`. Returns the activation for the next stage, or on
// the last stage the final hidden states (the head takes them on).
Tensor stage_forward(models::CausalLM& model, const parallel::ModelParallel& mp, const data::Batch& b,
                     const Tensor& in) {
  models::ForwardOptions fo;
  fo.positions = b.positions;
  fo.doc_ids = b.doc_ids;
  Tensor x = mp.first_stage() ? model.embed(b.ids) : in;
  return model.run_layers(x, mp.layer_begin(), mp.layer_end(), model.positions_for(b.ids, fo), fo);
}

}  // namespace

parallel::Stage make_stage(models::CausalLM& model, const parallel::ModelParallel& mp,
                           const std::vector<data::Batch>& mbs, const Head& head, double scale, Tensor* loss,
                           parallel::ParamShards* shards) {
  parallel::Stage st;
  st.activation_dtype = model.dtype();
  st.activation_device = model.device();
  st.activation_shape = [&model, &mbs](int64_t i) {
    if (size_t(i) >= mbs.size()) return Shape{0, 1, model.config().hidden_size};
    const data::Batch& b = mbs[size_t(i)];
    return Shape{b.ids.size(0), b.ids.size(1), model.config().hidden_size};
  };
  st.forward = [&model, &mp, &mbs, head, scale, loss, shards](int64_t i, const Tensor& in) {
    if (shards) shards->release_layers();
    if (size_t(i) >= mbs.size())
      return shards->phantom(mp.layer_begin(), mp.layer_end(), in,
                             mp.last_stage() ? Shape{} : Shape{0, 1, model.config().hidden_size}, model.dtype());
    const data::Batch& b = mbs[size_t(i)];
    Tensor x = stage_forward(model, mp, b, in);
    if (!mp.last_stage()) return x;
    Tensor l = head(x, b, i);
    {
      NoGradGuard ng;  // summed where it was computed: read back once per step, not per micro-batch
      *loss = loss->defined() ? add(*loss, l.detach()) : l.detach().clone();
    }
    return scale == 1.0 ? l : mul(l, scale);
  };
  return st;
}

void forward_only(models::CausalLM& model, const parallel::ModelParallel& mp, const parallel::Mesh& mesh,
                  const std::vector<data::Batch>& mbs, const Head& head, parallel::ParamShards* shards,
                  Tensor* loss) {
  NoGradGuard ng;
  // ZeRO-3: the same gathers on every dp rank, whatever its share of micro-batches.
  const int64_t count = shards ? int64_t(mesh.dp().reduce({double(mbs.size())}, parallel::ReduceOp::Max)[0])
                               : int64_t(mbs.size());
  Tensor unused;
  parallel::run_pipeline(parallel::Schedule::GPipe, count, mesh.pp(),
                         make_stage(model, mp, mbs, head, 1.0, loss ? loss : &unused, shards), false);
}

Reference load_frozen_copy(const MethodContext& ctx) {
  const Recipe& r = ctx.recipe;
  const bool via_host = r.parallel.tp > 1 || r.parallel.pp > 1;  // split on the host, then moved
  const Device dev = ctx.model.device();
  Reference ref;
  ref.model = models::load_model(r.model.path, dtype_from_name(r.model.dtype), via_host ? Device::cpu() : dev);
  ref.model->train(false);
  ref.mp = std::make_unique<parallel::ModelParallel>(ctx.mesh, *ref.model, nullptr);
  NoGradGuard ng;
  if (via_host) ref.model->to(dev);
  return ref;
}

void reference_forward(const MethodContext& ctx, const Reference& ref, const std::vector<data::Batch>& mbs,
                       const Head& head) {
  NoGradGuard ng;
  if (ref.model) {
    forward_only(*ref.model, *ref.mp, ctx.mesh, mbs, head, nullptr);
    return;
  }
  if (ctx.lora) ctx.lora->set_enabled(false);
  forward_only(ctx.model, ctx.mp, ctx.mesh, mbs, head, ctx.shards);
  if (ctx.lora) ctx.lora->set_enabled(true);
}

}  // namespace forge::train
