// Define-by-run autograd: ops record Nodes with a backward rule; backward() walks them in
// reverse topological order and accumulates into the leaves' .grad.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace forge {

// gout: one gradient per output of the node (zeros filled in for outputs that got none).
// need: one flag per input, false where the input needs no gradient (rules may skip it).
// Returns one gradient per input (an undefined Tensor where there is none).
using BackwardFn = std::function<std::vector<Tensor>(const std::vector<Tensor>& gout,
                                                     const std::vector<bool>& need)>;

struct Edge {
  std::shared_ptr<Node> fn;  // null: the input needs no gradient
  uint32_t input_nr = 0;     // which output of fn the input was
};

struct OutputMeta {
  Shape shape;
  DType dtype;
  Device device;
};

struct Node {
  std::string name;
  std::vector<Edge> next;            // one per input of the op
  std::vector<OutputMeta> outputs;   // one per output
  BackwardFn backward;               // cleared (and `released` set) once the graph is freed
  bool released = false;
  // AccumulateGrad nodes: the leaf they accumulate into (null otherwise).
  std::shared_ptr<TensorImpl> leaf;
  // Hooks on non-leaf tensors: (output index, hook), run on the gradient of that output.
  std::vector<std::pair<uint32_t, GradHook>> pre_hooks;
};

// ---- grad mode ---------------------------------------------------------------------------
bool grad_enabled();
void set_grad_enabled(bool on);
struct NoGradGuard {
  bool prev;
  NoGradGuard() : prev(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(prev); }
};
struct EnableGradGuard {
  bool prev;
  EnableGradGuard() : prev(grad_enabled()) { set_grad_enabled(true); }
  ~EnableGradGuard() { set_grad_enabled(prev); }
};

// True when grad mode is on and any input requires grad: the op must record itself.
bool needs_grad(const std::vector<Tensor>& inputs);

// Records a node for outputs computed from inputs. Inputs may be undefined (optional args).
// Makes the outputs require grad. Saved tensors belong in the rule's captures: capture
// outputs through detach() so that a node never owns its own output.
void record(const char* name, const std::vector<Tensor>& inputs, const std::vector<Tensor*>& outputs,
            BackwardFn rule);
inline void record(const char* name, const std::vector<Tensor>& inputs, Tensor& out, BackwardFn rule) {
  record(name, inputs, std::vector<Tensor*>{&out}, std::move(rule));
}

// Backward from several roots at once (grads may be undefined for one-element roots).
void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph,
                  bool create_graph);


// Activation checkpointing: runs fn without keeping its activations, and runs it again during
// backward (with the same random state) to get the gradients. Parameters fn uses get their
// gradients accumulated as in the plain run.
using CheckpointFn = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;
std::vector<Tensor> checkpoint(const CheckpointFn& fn, const std::vector<Tensor>& inputs);

}  // namespace forge
