#!/bin/bash
# Distributed training on CUDA devices, run in CI on simulated ones (FORGE_SIMULATE_CUDA: each rank
# takes cuda:<local rank>; the dp, tp and pp groups move device tensors through their device half,
# which on a GPU is NCCL): data, tensor and pipeline parallelism and ZeRO must give the losses and
# weights of the single-process CPU run (compare_runs.py), make no host fallback on any rank, and
# copy at most 5 tensors to the device per micro-batch (ids, labels, positions, document ids, and
# the vocabulary-parallel embedding's mask) plus 2 on the first step (the rotary table, the
# vocabulary-parallel loss's column indices), and 1 back per step (loss and gradient norm).
# usage: test_distributed_device.sh FORGE_BINARY PYTHON
set -euo pipefail
forge="$(realpath "$1")"
py="$2"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export OMP_NUM_THREADS=1 FORGE_SIMULATE_CUDA=8
mpi=(mpirun --oversubscribe --allow-run-as-root -x OMP_NUM_THREADS -x FORGE_SIMULATE_CUDA)
cd "$root"
base=(recipes/tiny_sft.yaml model.path="$dir/base" data.eval_path=recipes/data/capitals_eval.jsonl logging.eval_every=10
      train.max_steps=8)

train() {  # train NAME RANKS overrides...: one run into $dir/NAME (one rank: on the CPU, the reference)
  local name=$1 np=$2
  shift 2
  if [ "$np" = 1 ]; then "$forge" train "${base[@]}" model.device=cpu output.dir="$dir/$name" "$@" > "$dir/$name.log" 2>&1
  else "${mpi[@]}" -np "$np" "$forge" train "${base[@]}" model.device=cuda output.dir="$dir/$name" "$@" > "$dir/$name.log" 2>&1; fi \
    || { tail -20 "$dir/$name.log"; fail "$name did not train"; }
}
same() {  # same REF RUN MICRO_BATCHES: the device run equals the CPU one, within its copy budget
  printf '%-30s ' "$2"
  grep -q "on cuda:0" "$dir/$2.log" || fail "$2 did not run on cuda:0"
  "$py" "$here/compare_runs.py" "$dir/$1" "$dir/$2" || fail "$2 differs from $1"
  "$py" - "$dir/$2/metrics.jsonl" "$3" <<'PY' || fail "$2: over its copy budget"
import json, sys
mbs = int(sys.argv[2])
for l in map(json.loads, open(sys.argv[1])):
    if "loss" not in l: continue
    budget = 5 * mbs + 2 * (l["step"] == 1)  # the first step also moves one-time tables
    assert l["host_fallbacks"] == 0, f"step {l['step']}: {l['host_fallbacks']} host fallbacks"
    assert l["h2d"] <= budget, f"step {l['step']}: {l['h2d']} copies to the device (budget {budget})"
    assert l["d2h"] <= 1, f"step {l['step']}: {l['d2h']} copies back (budget 1)"
PY
}

train lora-single 1 train.batch_size=4
train lora-dp2-zero2 2 parallel.dp=2 parallel.zero=2 train.batch_size=2
same lora-single lora-dp2-zero2 1
train lora-tp2 2 parallel.tp=2
same lora-single lora-tp2 1
train lora-dp2xtp2xpp2-zero1 8 parallel.dp=2 parallel.tp=2 parallel.pp=2 parallel.zero=1 train.batch_size=2
same lora-single lora-dp2xtp2xpp2-zero1 1
train none-accum4-single 1 peft.method=none train.batch_size=1 train.grad_accum=4
train none-accum4-pp2-1f1b 2 peft.method=none parallel.pp=2 train.batch_size=1 train.grad_accum=4
same none-accum4-single none-accum4-pp2-1f1b 4
train none-accum4-dp2-zero3 2 peft.method=none parallel.dp=2 parallel.zero=3 train.batch_size=1 train.grad_accum=2
same none-accum4-single none-accum4-dp2-zero3 2
train none-accum4-dp2xtp2-zero3 4 peft.method=none parallel.dp=2 parallel.tp=2 parallel.zero=3 train.batch_size=1 \
  train.grad_accum=2
same none-accum4-single none-accum4-dp2xtp2-zero3 2
echo "distributed training on simulated GPUs: 6 meshes equal the CPU run"
