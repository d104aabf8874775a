#!/usr/bin/python3
"""PyTorch oracle for the op table: writes inputs, outputs, upstream gradients and input
gradients of every case to an HDF5 file that tests/core/test_ops.cpp reads.

Each case is one HDF5 group: spec (JSON as u8 bytes), in0.. (stored layout), gout, out,
grad0.. (gradients of the stored inputs). References are computed in float64 from inputs
that are already rounded to the case's dtype, so the C++ side sees exactly the same inputs.
Usage: ops_reference.py OUT.h5
"""
import json
import math
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

torch.manual_seed(1234)
CASES = []


def case(name, op, inputs, args=None, dtype="f32", rtol=None):
    """inputs: list of dicts {shape, kind: normal|positive|ids|mask|int, high, transpose, grad}."""
    CASES.append(dict(name=name, op=op, inputs=inputs, args=args or {}, dtype=dtype, rtol=rtol))


def x(*shape, kind="normal", transpose=False, grad=True, high=None, scale=1.0):
    return dict(shape=list(shape), kind=kind, transpose=transpose, grad=grad, high=high, scale=scale)


def ids(*shape, high):
    return dict(shape=list(shape), kind="ids", high=high, grad=False, transpose=False, scale=1.0)


# ---- reference implementations (float64) --------------------------------------------------------
def rotate_half(t):
    h = t.shape[-1] // 2
    return torch.cat([-t[..., h:], t[..., :h]], dim=-1)


def ref_rope(t, pos, inv_freq, mscale=1.0):
    # HF: freqs = position * inv_freq (f32), emb = cat(freqs, freqs); partial rotary (inv_freq
    # shorter than D/2): the first 2 * len(inv_freq) dims rotate, the rest pass (Phi-3)
    R = 2 * inv_freq.shape[0]
    if R < t.shape[-1]:
        return torch.cat([ref_rope(t[..., :R], pos, inv_freq, mscale), t[..., R:]], dim=-1)
    p = pos.to(torch.float32)
    if p.dim() == 1:
        p = p[None, :]
    freqs = p[..., None] * inv_freq.to(torch.float32)[None, None, :]  # [B|1, T, D/2]
    emb = torch.cat([freqs, freqs], dim=-1).double()
    cos, sin = emb.cos()[:, None] * mscale, emb.sin()[:, None] * mscale
    return t * cos + rotate_half(t) * sin


def ref_attention(q, k, v, causal=True, doc=None, scale=None, window=0, softcap=0):
    B, Hq, T, D = q.shape
    Hkv, S = k.shape[1], k.shape[2]
    k = k.repeat_interleave(Hq // Hkv, dim=1)
    v = v.repeat_interleave(Hq // Hkv, dim=1)
    s = (q @ k.transpose(-1, -2)) * (scale if scale is not None else 1.0 / math.sqrt(D))
    if softcap:  # Gemma 2: scores soft-capped before the mask
        s = softcap * torch.tanh(s / softcap)
    mask = torch.ones(B, 1, T, S, dtype=torch.bool)
    if causal:
        i = torch.arange(T)[:, None]
        j = torch.arange(S)[None, :]
        mask &= (j <= i + (S - T))[None, None]
        if window:  # transformers' sliding window: a query sees `window` keys, itself included
            mask &= (j > i + (S - T) - window)[None, None]
    if doc is not None:
        mask &= (doc[:, :, None] == doc[:, None, :])[:, None]
    s = s.masked_fill(~mask, float("-inf"))
    return torch.softmax(s, dim=-1) @ v


def ref_rms_norm(t, w, eps, unit_offset=False):
    return t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + eps) * ((1 + w) if unit_offset else w)


OPS = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b, "pow": lambda a, b: torch.pow(a, b),
    "maximum": torch.maximum, "minimum": torch.minimum,
    "add_scalar": lambda a, s: a + s, "mul_scalar": lambda a, s: a * s, "pow_scalar": lambda a, s: a ** s,
    "rsub": lambda a, s: s - a, "rdiv": lambda a, s: s / a,
    "neg": torch.neg, "exp": torch.exp, "log": torch.log, "sqrt": torch.sqrt, "rsqrt": torch.rsqrt,
    "sigmoid": torch.sigmoid, "tanh": torch.tanh, "silu": F.silu, "gelu": F.gelu,
    "gelu_tanh": lambda a: F.gelu(a, approximate="tanh"), "abs": torch.abs, "square": torch.square,
    "log_sigmoid": F.logsigmoid,
    "sum": lambda a, dims, keepdim: a.sum(dim=dims, keepdim=keepdim) if dims else a.sum(),
    "mean": lambda a, dims, keepdim: a.mean(dim=dims, keepdim=keepdim) if dims else a.mean(),
    "max": lambda a, dims, keepdim: a.amax(dim=dims, keepdim=keepdim) if dims else a.amax(),
    "matmul": torch.matmul,
    "linear": lambda a, w, b=None: F.linear(a, w, b),
    "softmax": lambda a, dim: torch.softmax(a, dim), "log_softmax": lambda a, dim: torch.log_softmax(a, dim),
    "cross_entropy": lambda a, t, reduction: F.cross_entropy(a, t, ignore_index=-100, reduction=reduction),
    "embedding": lambda w, i: F.embedding(i, w),
    "rms_norm": lambda a, w, eps, unit_offset=False: ref_rms_norm(a, w, eps, unit_offset),
    "rope": lambda a, p, f, mscale=1.0: ref_rope(a, p, f, mscale),
    "attention": lambda q, k, v, doc=None, causal=True, window=0, softcap=0, scale=None: ref_attention(
        q, k, v, causal, doc, scale=scale, window=window, softcap=softcap),
    "cat": lambda *xs, dim: torch.cat(xs, dim), "stack": lambda *xs, dim: torch.stack(xs, dim),
    "split": lambda a, size, dim, index: torch.split(a, size, dim)[index],
    "where": lambda c, a, b: torch.where(c.bool(), a, b),
    "masked_fill": lambda a, m, value: a.masked_fill(m.bool(), value),
    "views": lambda a, w: (a.permute(0, 2, 1).reshape(a.shape[0], -1)[:, 1:-1:2] * w).unsqueeze(1).expand(-1, 3, -1),
    "cast_roundtrip": lambda a: a * 1.0,
}


def build_cases():
    for dt in ("f32", "bf16"):
        s = "" if dt == "f32" else "_bf16"
        case("add_broadcast" + s, "add", [x(4, 1, 5), x(3, 5)], dtype=dt)
        case("sub_transposed" + s, "sub", [x(6, 7, transpose=True), x(6, 7)], dtype=dt)
        case("mul_broadcast" + s, "mul", [x(2, 3, 4), x(4)], dtype=dt)
        case("div" + s, "div", [x(5, 6), x(5, 6, kind="positive")], dtype=dt)
        case("silu" + s, "silu", [x(7, 33)], dtype=dt)
        case("gelu" + s, "gelu", [x(7, 33)], dtype=dt)
        case("exp" + s, "exp", [x(5, 9)], dtype=dt)
        case("sum_dims" + s, "sum", [x(3, 4, 5)], {"dims": [0, 2], "keepdim": False}, dtype=dt)
        case("mean_keep" + s, "mean", [x(3, 4, 5)], {"dims": [1], "keepdim": True}, dtype=dt)
        case("matmul_batched" + s, "matmul", [x(3, 17, 24), x(3, 24, 9)], dtype=dt)
        case("matmul_transposed" + s, "matmul", [x(2, 12, 16, transpose=True), x(2, 16, 9, transpose=True)], dtype=dt)
        case("linear_bias" + s, "linear", [x(2, 5, 32), x(24, 32), x(24)], dtype=dt)
        case("softmax_last" + s, "softmax", [x(6, 50, scale=3.0)], {"dim": -1}, dtype=dt)
        case("log_softmax_mid" + s, "log_softmax", [x(3, 20, 4, scale=3.0)], {"dim": 1}, dtype=dt)
        case("cross_entropy_mean" + s, "cross_entropy", [x(12, 40, scale=2.0), dict(shape=[12], kind="target", high=40,
             grad=False, transpose=False, scale=1.0)], {"reduction": "mean"}, dtype=dt)
        case("embedding" + s, "embedding", [x(50, 16), ids(4, 9, high=50)], dtype=dt)
        case("rms_norm" + s, "rms_norm", [x(4, 7, 48), x(48, kind="positive")], {"eps": 1e-5}, dtype=dt)
        case("rope" + s, "rope", [x(2, 3, 10, 16), ids(2, 10, high=500), dict(shape=[8], kind="inv_freq", grad=False,
             transpose=False, high=None, scale=1.0)], dtype=dt)
        case("attention_gqa" + s, "attention", [x(2, 4, 70, 32), x(2, 2, 70, 32), x(2, 2, 70, 32)],
             {"causal": True}, dtype=dt)
    # f32 only: the rest of the op set and its awkward shapes.
    case("pow", "pow", [x(4, 5, kind="positive"), x(4, 5)])
    case("maximum", "maximum", [x(4, 5), x(5)])
    case("minimum", "minimum", [x(4, 5), x(4, 1)])
    case("add_scalar", "add_scalar", [x(3, 4)], {"s": 1.5})
    case("mul_scalar", "mul_scalar", [x(3, 4)], {"s": -2.5})
    case("pow_scalar", "pow_scalar", [x(3, 4, kind="positive")], {"s": 1.7})
    case("rsub", "rsub", [x(3, 4)], {"s": 2.0})
    case("rdiv", "rdiv", [x(3, 4, kind="positive")], {"s": 3.0})
    for name in ("neg", "log", "sqrt", "rsqrt", "sigmoid", "tanh", "gelu_tanh", "abs", "square", "log_sigmoid"):
        kind = "positive" if name in ("log", "sqrt", "rsqrt") else "normal"
        case(name, name, [x(6, 11, kind=kind, transpose=True)])
    case("log_sigmoid_wide", "log_sigmoid", [x(6, 11, scale=60.0)])  # exp(-x) overflows f32 past 88
    case("sum_all", "sum", [x(5, 6, 7)], {"dims": [], "keepdim": False})
    case("sum_leading", "sum", [x(64, 40)], {"dims": [0], "keepdim": False})
    case("max_dim", "max", [x(4, 6, 5)], {"dims": [1], "keepdim": False})
    case("max_all", "max", [x(4, 6)], {"dims": [], "keepdim": False})
    case("matmul_2d", "matmul", [x(33, 65), x(65, 17)])
    case("matmul_3d_2d", "matmul", [x(2, 9, 20), x(20, 11, transpose=True)])
    case("matmul_broadcast_batch", "matmul", [x(2, 3, 8, 6), x(3, 6, 5)])
    case("linear_nobias", "linear", [x(7, 10), x(6, 10)])
    case("cross_entropy_sum", "cross_entropy", [x(10, 30, scale=2.0), dict(shape=[10], kind="target", high=30,
         grad=False, transpose=False, scale=1.0)], {"reduction": "sum"})
    case("attention_mha_noncausal", "attention", [x(1, 2, 40, 16), x(1, 2, 40, 16), x(1, 2, 40, 16)],
         {"causal": False})
    case("attention_docs", "attention", [x(2, 4, 130, 16), x(2, 1, 130, 16), x(2, 1, 130, 16),
         dict(shape=[2, 130], kind="docs", grad=False, transpose=False, high=None, scale=1.0)], {"causal": True})
    case("attention_kv_longer", "attention", [x(1, 2, 20, 16), x(1, 2, 90, 16), x(1, 2, 90, 16)], {"causal": True})
    # Sliding windows shorter than the sequence: tiles wholly before a query's window are skipped,
    # tiles across its edge masked; with documents, and with more keys than queries (decode).
    case("attention_window", "attention", [x(1, 4, 150, 32), x(1, 2, 150, 32), x(1, 2, 150, 32)],
         {"causal": True, "window": 37})
    case("attention_window_docs", "attention", [x(2, 2, 140, 16), x(2, 1, 140, 16), x(2, 1, 140, 16),
         dict(shape=[2, 140], kind="docs", grad=False, transpose=False, high=None, scale=1.0)],
         {"causal": True, "window": 70})
    case("attention_window_kv_longer", "attention", [x(1, 2, 9, 16), x(1, 2, 100, 16), x(1, 2, 100, 16)],
         {"causal": True, "window": 20})
    case("attention_transposed", "attention", [x(2, 3, 65, 64), x(2, 3, 65, 64), x(2, 3, 65, 64)], {"causal": True})
    # Head dims whose CUDA kernels split a row over 2 and 4 lanes; 130 rows cross tile edges.
    case("attention_d48", "attention", [x(1, 2, 33, 48), x(1, 1, 33, 48), x(1, 1, 33, 48)], {"causal": True})
    case("attention_d128", "attention", [x(1, 4, 130, 128), x(1, 2, 130, 128), x(1, 2, 130, 128)], {"causal": True})
    case("rope_shared_pos", "rope", [x(1, 2, 7, 8), ids(7, high=100), dict(shape=[4], kind="inv_freq", grad=False,
         transpose=False, high=None, scale=1.0)])
    case("cat", "cat", [x(2, 3, 4), x(2, 5, 4), x(2, 1, 4)], {"dim": 1})
    case("stack", "stack", [x(3, 4), x(3, 4)], {"dim": 1})
    case("split", "split", [x(4, 10)], {"size": 4, "dim": 1, "index": 2})
    case("where", "where", [dict(shape=[4, 5], kind="mask", grad=False, transpose=False, high=None, scale=1.0),
                            x(4, 5), x(5)])
    case("masked_fill", "masked_fill", [x(3, 6), dict(shape=[6], kind="mask", grad=False, transpose=False, high=None,
         scale=1.0)], {"value": -2.0})
    case("views", "views", [x(2, 4, 6), x(11)])
    # Added later, last so the earlier cases keep their random inputs.
    for dt in ("f32", "bf16"):
        s = "" if dt == "f32" else "_bf16"
        # Gemma's (1 + w), computed in f32 and rounded once
        case("rms_norm_unit_offset" + s, "rms_norm", [x(4, 7, 48), x(48)], {"eps": 1e-6, "unit_offset": True},
             dtype=dt)
        # Gemma 2's soft-capped scores with its own scale (most scores reach the cap)
        case("attention_softcap" + s, "attention", [x(2, 4, 70, 32), x(2, 2, 70, 32), x(2, 2, 70, 32)],
             {"causal": True, "softcap": 2.0, "scale": 0.4}, dtype=dt)
    # Phi-4-mini's partial rotary (18 of 24 dims) with longrope's factor on cos and sin
    case("rope_partial", "rope", [x(2, 3, 10, 24), ids(2, 10, high=500), dict(shape=[9], kind="inv_freq",
         grad=False, transpose=False, high=None, scale=1.0)], {"mscale": 1.19})
    # with a window and packed documents
    case("attention_softcap_window_docs", "attention", [x(2, 2, 140, 16), x(2, 1, 140, 16), x(2, 1, 140, 16),
         dict(shape=[2, 140], kind="docs", grad=False, transpose=False, high=None, scale=1.0)],
         {"causal": True, "window": 50, "softcap": 1.5, "scale": 0.5})


def make_input(spec, dt):
    shape, kind = spec["shape"], spec["kind"]
    if kind == "ids":
        return torch.randint(0, spec["high"], shape, dtype=torch.int64)
    if kind == "target":
        t = torch.randint(0, spec["high"], shape, dtype=torch.int64)
        t[::4] = -100  # ignored positions
        return t
    if kind == "mask":
        return (torch.rand(shape) > 0.5).to(torch.uint8)
    if kind == "docs":  # packed documents: increasing ids with random boundaries
        d = torch.zeros(shape, dtype=torch.int64)
        for b in range(shape[0]):
            cuts = sorted(torch.randint(1, shape[1], (3,)).tolist())
            for c in cuts:
                d[b, c:] += 1
        return d
    if kind == "inv_freq":
        n = shape[0]
        return (1.0 / (10000.0 ** (torch.arange(n, dtype=torch.float32) * 2 / (2 * n)))).float()
    store = list(shape)
    if spec["transpose"]:
        store[-1], store[-2] = store[-2], store[-1]
    t = torch.randn(store) * spec["scale"]
    if kind == "positive":
        t = t.abs() + 0.5
    if dt == "bf16":
        t = t.bfloat16().float()
    return t


def run_case(c):
    stored = [make_input(s, c["dtype"]) for s in c["inputs"]]
    leaves, actual = [], []
    for s, t in zip(c["inputs"], stored):
        if t.is_floating_point() and s["kind"] not in ("inv_freq",):
            leaf = t.double().requires_grad_(s["grad"])
            leaves.append(leaf)
            v = leaf.transpose(-1, -2) if s["transpose"] else leaf
        else:
            leaves.append(None)
            v = t
        actual.append(v)
    out = OPS[c["op"]](*actual, **c["args"])
    gout = torch.randn(out.shape, dtype=torch.float64)
    if c["dtype"] == "bf16":
        gout = gout.bfloat16().double()
    out.backward(gout)
    return stored, out, gout, [l.grad if l is not None and l.requires_grad else None for l in leaves]


def main(path):
    build_cases()
    with h5py.File(path, "w") as f:
        for c in CASES:
            stored, out, gout, grads = run_case(c)
            g = f.create_group(c["name"])
            spec = {k: c[k] for k in ("op", "args", "dtype", "rtol")}
            spec["inputs"] = [{"transpose": s["transpose"], "grad": s["grad"]} for s in c["inputs"]]
            g["spec"] = np.frombuffer(json.dumps(spec).encode(), dtype=np.uint8)
            for i, t in enumerate(stored):
                g[f"in{i}"] = t.numpy()
            g["out"] = out.detach().float().numpy()
            g["gout"] = gout.float().numpy()
            for i, gr in enumerate(grads):
                if gr is not None:
                    g[f"grad{i}"] = gr.float().numpy()
    print(f"wrote {len(CASES)} op cases to {path}")


if __name__ == "__main__":
    main(sys.argv[1])
