// The autograd engine: recording nodes, reverse-topological backward, leaf accumulation,
// hooks, freed-graph errors and activation checkpointing.
#include "core/autograd.h"

#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "core/ops.h"
#include "core/ops/common.h"
#include "core/random.h"

namespace forge {

namespace {
thread_local bool t_grad_enabled = true;

std::shared_ptr<Node> grad_accumulator(const Tensor& leaf) {
  TensorImpl* impl = leaf.impl();
  if (auto n = impl->grad_accumulator.lock()) return n;
  auto n = std::make_shared<Node>();
  n->name = "AccumulateGrad";
  n->leaf = leaf.impl_ptr();
  n->outputs.push_back({leaf.shape(), leaf.dtype(), leaf.device()});
  impl->grad_accumulator = n;
  return n;
}

Edge edge_of(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return {};
  if (t.grad_fn()) return {t.grad_fn(), t.impl()->output_nr};
  return {grad_accumulator(t), 0};
}

// Adds g into the leaf's .grad (a fresh buffer the first time, in place afterwards).
void accumulate(const std::shared_ptr<TensorImpl>& leaf_impl, Tensor g, bool create_graph) {
  Tensor leaf(leaf_impl);
  for (auto& hook : leaf_impl->hooks) {
    Tensor r = hook(g);
    if (r.defined()) g = r;
  }
  if (g.dtype() != leaf.dtype()) g = g.to(leaf.dtype());
  if (g.device() != leaf.device()) g = g.to(leaf.device());
  if (g.shape() != leaf.shape()) g = detail::sum_to(g, leaf.shape());
  if (!leaf_impl->grad) {
    bool owned = g.impl_ptr().use_count() == 1 && g.impl()->storage.use_count() == 1 && g.is_contiguous();
    leaf_impl->grad = (create_graph || owned) ? g.impl_ptr() : g.detach().clone().impl_ptr();
  } else if (create_graph) {
    leaf_impl->grad = add(Tensor(leaf_impl->grad), g).impl_ptr();
  } else {
    Tensor acc(leaf_impl->grad);
    add_(acc, g);
  }
  for (auto& hook : leaf_impl->post_accumulate_hooks) hook(leaf);
}

void add_into(Tensor& slot, const Tensor& g) {
  if (!slot.defined()) slot = g;
  else slot = add(slot, g);
}
}  // namespace

bool grad_enabled() { return t_grad_enabled; }
void set_grad_enabled(bool on) { t_grad_enabled = on; }

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!t_grad_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record(const char* name, const std::vector<Tensor>& inputs, const std::vector<Tensor*>& outputs,
            BackwardFn rule) {
  auto node = std::make_shared<Node>();
  node->name = name;
  node->backward = std::move(rule);
  node->next.reserve(inputs.size());
  for (const Tensor& t : inputs) node->next.push_back(edge_of(t));
  for (size_t i = 0; i < outputs.size(); ++i) {
    Tensor& o = *outputs[i];
    node->outputs.push_back({o.shape(), o.dtype(), o.device()});
    o.impl()->grad_fn = node;
    o.impl()->output_nr = uint32_t(i);
    o.impl()->requires_grad = true;
  }
}

void Tensor::register_hook(GradHook hook) const {
  FORGE_CHECK(requires_grad(), "register_hook on a tensor that does not require grad");
  if (is_leaf()) impl_->hooks.push_back(std::move(hook));
  else impl_->grad_fn->pre_hooks.emplace_back(impl_->output_nr, std::move(hook));
}

void Tensor::register_post_accumulate_grad_hook(PostAccumulateHook hook) const {
  FORGE_CHECK(is_leaf() && requires_grad(), "post-accumulate hooks are for leaf tensors that require grad");
  impl_->post_accumulate_hooks.push_back(std::move(hook));
}

void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph,
                  bool create_graph) {
  FORGE_CHECK(roots.size() == grads.size(), "backward: ", roots.size(), " roots but ", grads.size(), " grads");
  // 1. Count, for every reachable node, how many edges point at it.
  std::unordered_map<Node*, int> deps;
  std::unordered_map<Node*, std::vector<Tensor>> buffers;
  std::vector<std::shared_ptr<Node>> stack, ready;
  std::unordered_set<Node*> seen;
  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& r = roots[i];
    FORGE_CHECK(r.requires_grad(), "backward: tensor does not require grad and has no grad_fn");
    Edge e = edge_of(r);
    Tensor g = grads[i];
    if (!g.defined()) {
      FORGE_CHECK(r.numel() == 1, "backward: a gradient can be created implicitly only for one-element outputs, got ",
                  shape_str(r.shape()), "; pass grad explicitly");
      g = ones_like(r);
    }
    FORGE_CHECK(g.shape() == r.shape(), "backward: grad shape ", shape_str(g.shape()), " does not match ",
                shape_str(r.shape()));
    auto& buf = buffers[e.fn.get()];
    buf.resize(e.fn->outputs.size());
    add_into(buf[e.input_nr], g);
    if (seen.insert(e.fn.get()).second) stack.push_back(e.fn);
  }
  std::vector<std::shared_ptr<Node>> root_nodes = stack;
  while (!stack.empty()) {
    auto n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next) {
      if (!e.fn) continue;
      deps[e.fn.get()]++;
      if (seen.insert(e.fn.get()).second) stack.push_back(e.fn);
    }
  }
  for (auto& n : root_nodes)
    if (deps[n.get()] == 0) ready.push_back(n);

  // 2. Run nodes whose consumers have all run.
  bool prev_mode = grad_enabled();
  set_grad_enabled(create_graph);
  try {
    while (!ready.empty()) {
      std::shared_ptr<Node> n = ready.back();
      ready.pop_back();
      std::vector<Tensor> gout = std::move(buffers[n.get()]);
      buffers.erase(n.get());
      gout.resize(n->outputs.size());
      for (size_t i = 0; i < gout.size(); ++i)
        if (!gout[i].defined()) {
          const OutputMeta& m = n->outputs[i];
          gout[i] = Tensor::zeros(m.shape, m.dtype, m.device);
        }
      for (auto& [idx, hook] : n->pre_hooks) {
        Tensor r = hook(gout[idx]);
        if (r.defined()) gout[idx] = r;
      }
      if (n->leaf) {
        Tensor g = std::move(gout[0]);
        gout.clear();
        accumulate(n->leaf, std::move(g), create_graph);
        continue;
      }
      FORGE_CHECK(!n->released && n->backward, "backward through node '", n->name,
                  "' whose saved tensors were already freed by an earlier backward(); pass retain_graph=true to "
                  "the first backward() to run backward twice through the same graph");
      std::vector<bool> need(n->next.size());
      for (size_t i = 0; i < need.size(); ++i) need[i] = n->next[i].fn != nullptr;
      std::vector<Tensor> gin = n->backward(gout, need);
      gout.clear();
      if (!retain_graph) {
        n->backward = nullptr;
        n->released = true;
      }
      FORGE_CHECK(gin.size() == n->next.size(), "internal: node '", n->name, "' returned ", gin.size(),
                  " gradients for ", n->next.size(), " inputs");
      for (size_t i = 0; i < gin.size(); ++i) {
        const Edge& e = n->next[i];
        if (!e.fn) continue;
        if (gin[i].defined()) {
          auto& buf = buffers[e.fn.get()];
          buf.resize(e.fn->outputs.size());
          add_into(buf[e.input_nr], gin[i]);
        }
        if (--deps[e.fn.get()] == 0) ready.push_back(e.fn);
      }
    }
  } catch (...) {
    set_grad_enabled(prev_mode);
    throw;
  }
  set_grad_enabled(prev_mode);
}

std::vector<Tensor> checkpoint(const CheckpointFn& fn, const std::vector<Tensor>& inputs) {
  if (!grad_enabled()) return fn(inputs);
  Generator rng_before = default_generator();
  std::vector<Tensor> outs;
  {
    NoGradGuard ng;
    outs = fn(inputs);
  }
  std::vector<Tensor> saved;
  std::vector<bool> wanted;
  for (const Tensor& t : inputs) {
    saved.push_back(t.defined() ? t.detach() : Tensor());
    wanted.push_back(t.defined() && t.requires_grad());
  }
  std::vector<Tensor*> out_ptrs;
  for (Tensor& o : outs)
    if (is_floating(o.dtype())) out_ptrs.push_back(&o);
  record("checkpoint", inputs, out_ptrs,
         [fn, saved, wanted, rng_before](const std::vector<Tensor>& gout, const std::vector<bool>&) {
           // Recompute with grad on and the random state of the first run (same dropout masks).
           Generator rng_now = default_generator();
           default_generator() = rng_before;
           std::vector<Tensor> xs;
           for (size_t i = 0; i < saved.size(); ++i) {
             xs.push_back(saved[i].defined() ? saved[i].detach() : Tensor());
             if (wanted[i]) xs.back().requires_grad_(true);
           }
           std::vector<Tensor> ys;
           {
             EnableGradGuard eg;
             ys = fn(xs);
           }
           default_generator() = rng_now;
           std::vector<Tensor> roots, grads;
           size_t k = 0;
           for (Tensor& y : ys) {
             if (!is_floating(y.dtype())) continue;
             if (y.requires_grad()) {
               roots.push_back(y);
               grads.push_back(gout[k]);
             }
             ++k;
           }
           if (!roots.empty()) run_backward(roots, grads, false, false);
           std::vector<Tensor> gin;
           for (size_t i = 0; i < xs.size(); ++i) gin.push_back(wanted[i] ? xs[i].grad() : Tensor());
           return gin;
         });
  return outs;
}

}  // namespace forge
