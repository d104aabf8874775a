#!/usr/bin/python3
"""PyTorch side of `forge bench ops`: the same GEMM shapes and attention fwd+bwd, same JSON lines.
Run with OMP_WAIT_POLICY=PASSIVE (see ../shared/PEERS.md). Attention is the eager
matmul-softmax-matmul PyTorch 1.13 offers on CPU (no fused SDPA there)."""
import json
import math
import os
import sys
import time

import torch


def median_time(fn, min_runs=3, budget=1.0):
    fn()
    ts, start = [], time.perf_counter()
    while len(ts) < min_runs or time.perf_counter() - start < budget:
        a = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - a)
        if len(ts) >= 50:
            break
    ts.sort()
    return ts[len(ts) // 2]


def report(name, shape, dtype, value, unit, json_out):
    m = dict(name=name, shape=shape, dtype=dtype, threads=torch.get_num_threads(), value=value, unit=unit,
             backend="pytorch")
    print(json.dumps(m) if json_out else f"{name:10s} {shape:18s} {dtype:5s} pytorch   {m['threads']:2d} threads  "
          f"{value:9.2f} {unit}", flush=True)


def main():
    json_out = "--json" in sys.argv
    budget = 0.2 if "--quick" in sys.argv else 1.0
    # PyTorch defaults to 1 thread here; use what Forge uses (OMP_NUM_THREADS or every core).
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count())))
    torch.manual_seed(0)
    with torch.no_grad():
        for M, K, N in [(1024, 1024, 1024), (4096, 288, 768), (4096, 768, 2048)]:
            for dt, name in [(torch.float32, "f32"), (torch.bfloat16, "bf16")]:
                a, b = torch.randn(M, K).to(dt), torch.randn(K, N).to(dt)
                sec = median_time(lambda: a @ b, budget=budget)
                report("gemm", f"{M}x{K}x{N}", name, 2 * M * N * K / sec / 1e9, "GFLOP/s", json_out)
    for T in (256, 1024):
        B, H, D = 8, 8, 64
        q, k, v = (torch.randn(B, H, T, D, requires_grad=True) for _ in range(3))
        g = torch.randn(B, H, T, D)
        mask = torch.ones(T, T, dtype=torch.bool).tril()

        def step():
            s = (q @ k.transpose(-1, -2)) / math.sqrt(D)
            o = torch.softmax(s.masked_fill(~mask, float("-inf")), -1) @ v
            o.backward(g)

        sec = median_time(step, min_runs=2, budget=budget)
        report("attention", f"B8 H8 T{T} D64", "f32", sec * 1e3, "ms", json_out)


if __name__ == "__main__":
    main()
