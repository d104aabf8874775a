"""Compares a parallel training run with the single-process run of the same global batch.

usage: compare_runs.py REFERENCE_RUN_DIR RUN_DIR
  metrics.jsonl: every step's loss agrees to relative 1e-5 at step 1, growing linearly to 1e-4 at
  step 20 (only the order of floating-point sums may differ); the final weights (adapter/ or
  model/) agree to 1e-4 of their largest magnitude, eval losses to 1e-4. Prints the largest deviations.
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


def main(ref, run):
    a, b = losses(ref), losses(run)
    assert sorted(a) == sorted(b) and len(a) >= 2, f"steps differ: {sorted(a)} vs {sorted(b)}"
    worst = 0.0
    for step in sorted(a):
        rel = abs(a[step] - b[step]) / abs(a[step])
        tol = 1e-5 + (1e-4 - 1e-5) * (step - 1) / 19
        worst = max(worst, rel / tol)
        assert rel <= tol, f"step {step}: loss {b[step]!r} vs single-process {a[step]!r} (relative {rel:.2e} > {tol:.1e})"
    ea, eb = losses(ref, "eval_loss"), losses(run, "eval_loss")
    assert sorted(ea) == sorted(eb), f"eval steps differ: {sorted(ea)} vs {sorted(eb)}"
    for step in ea:
        assert abs(ea[step] - eb[step]) <= 1e-4 * abs(ea[step]), f"step {step}: eval loss {eb[step]} vs {ea[step]}"
    wa, wb = weights(ref), weights(run)
    assert sorted(wa) == sorted(wb), "the saved tensors differ in names"
    wdev = 0.0
    for name, (t, _) in wa.items():
        u = wb[name][0]
        assert t.shape == u.shape, f"{name}: shape {tuple(u.shape)} vs {tuple(t.shape)}"
        scale = max(float(t.abs().max()), 1e-12)
        dev = float((t - u).abs().max()) / scale
        wdev = max(wdev, dev)
        assert dev <= 1e-4, f"{name}: final weights differ by {dev:.2e} of their largest magnitude"
    first = min(a)
    print(f"ok: {len(a)} steps, loss {a[first]:.6f} -> {a[max(a)]:.6f}, worst loss deviation {worst:.2f} of tolerance, "
          f"weights {wdev:.1e} ({len(wa)} tensors), {len(ea)} evals")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
