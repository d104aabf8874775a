"""Compares a parallel training run with the single-process run of the same global batch.

usage: compare_runs.py REFERENCE_RUN_DIR RUN_DIR [ELEMENTWISE_TOL]
  metrics.jsonl: every step's loss agrees to relative 1e-5 at step 1, growing linearly to 1e-4 at
  step 20 (only the order of floating-point sums may differ); eval losses agree to 1e-4.
  Final weights (adapter/ or model/): each tensor agrees to relative 1e-4 in norm, and every
  element to ELEMENTWISE_TOL (default 1e-3) of the tensor's largest magnitude. The elementwise
  bound is looser for AdamW: it divides by sqrt(v), so an element whose gradient is almost zero
  moves by about lr per step in the direction of that tiny gradient's sign, which summation order
  can flip (a few dozen of 124k elements in a full finetune; SGD runs pass 1e-5).
  GRPO runs (a "reward" per step): the rewards and eval rewards are equal (each rank samples what
  the single process samples for its prompts), and the loss, which is about 0 on fresh rollouts,
  is compared relative to max(|loss|, 0.01).
Prints the largest deviations.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from check_peft_files import read_safetensors, read_weights  # noqa: E402


def losses(run, key="loss"):
    out = {}
    for line in open(os.path.join(run, "metrics.jsonl")):
        j = json.loads(line)
        if key in j:
            out[j["step"]] = j[key]
    return out


def weights(run):
    if os.path.isdir(os.path.join(run, "adapter")):
        return read_safetensors(os.path.join(run, "adapter", "adapter_model.safetensors"))
    return read_weights(os.path.join(run, "model"))


def main(ref, run, elementwise=1e-3):
    a, b = losses(ref), losses(run)
    assert sorted(a) == sorted(b) and len(a) >= 2, f"steps differ: {sorted(a)} vs {sorted(b)}"
    worst = 0.0
    grpo = bool(losses(ref, "reward"))
    for key in ("reward", "eval_reward") if grpo else ():
        ra, rb = losses(ref, key), losses(run, key)
        assert ra == rb, f"{key} differs: {rb} vs single-process {ra}"
    for step in sorted(a):
        rel = abs(a[step] - b[step]) / (max(abs(a[step]), 0.01) if grpo else abs(a[step]))
        tol = 1e-5 + (1e-4 - 1e-5) * (step - 1) / 19
        worst = max(worst, rel / tol)
        assert rel <= tol, f"step {step}: loss {b[step]!r} vs single-process {a[step]!r} (relative {rel:.2e} > {tol:.1e})"
    ea, eb = losses(ref, "eval_loss"), losses(run, "eval_loss")
    assert sorted(ea) == sorted(eb), f"eval steps differ: {sorted(ea)} vs {sorted(eb)}"
    for step in ea:
        assert abs(ea[step] - eb[step]) <= 1e-4 * abs(ea[step]), f"step {step}: eval loss {eb[step]} vs {ea[step]}"
    wa, wb = weights(ref), weights(run)
    assert sorted(wa) == sorted(wb), "the saved tensors differ in names"
    wdev = ndev = 0.0
    for name, (t, _) in wa.items():
        u = wb[name][0]
        assert t.shape == u.shape, f"{name}: shape {tuple(u.shape)} vs {tuple(t.shape)}"
        scale = max(float(t.abs().max()), 1e-12)
        dev = float((t - u).abs().max()) / scale
        norm = float((t - u).norm()) / max(float(t.norm()), 1e-12)
        wdev, ndev = max(wdev, dev), max(ndev, norm)
        assert norm <= 1e-4, f"{name}: final weights differ by {norm:.2e} in norm (relative)"
        assert dev <= elementwise, f"{name}: an element differs by {dev:.2e} of the largest magnitude"
    first = min(a)
    print(f"ok: {len(a)} steps, loss {a[first]:.6f} -> {a[max(a)]:.6f}, worst loss deviation {worst:.2f} of tolerance, "
          f"weights {ndev:.1e} in norm, {wdev:.1e} elementwise ({len(wa)} tensors), {len(ea)} evals")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(float(x) for x in sys.argv[3:4]))
