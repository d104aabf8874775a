#!/usr/bin/python3
"""Runs `forge bench ops --json` and bench/torch_ops.py with the same threads, one after the
other, and prints Forge / PyTorch per shape. Usage: bench/compare_ops.py [BUILD_DIR] [--quick]"""
import json
import os
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
build = next((a for a in sys.argv[1:] if not a.startswith("--")), os.path.join(here, "..", "build"))
extra = [a for a in sys.argv[1:] if a.startswith("--")]
env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")


def run(cmd):
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


forge = run([os.path.join(build, "forge"), "bench", "ops", "--json"] + extra)
torch = run(["/usr/bin/python3", os.path.join(here, "torch_ops.py"), "--json"] + extra)
ref = {(m["name"], m["shape"], m["dtype"]): m for m in torch}
print(f"{'measurement':34s} {'forge':>10s} {'pytorch':>10s} {'ratio':>7s}  (ratio > 1: Forge faster)")
for m in forge:
    key = (m["name"], m["shape"], m["dtype"])
    if key not in ref or m.get("backend") in ("openblas", "eigen"):
        continue
    t = ref[key]
    ratio = m["value"] / t["value"] if m["unit"] == "GFLOP/s" else t["value"] / m["value"]
    label = f"{m['name']} {m['shape']} {m['dtype']}"
    print(f"{label:34s} {m['value']:10.2f} {t['value']:10.2f} {ratio:7.2f}  {m['unit']}, {m['threads']} threads")
