#!/bin/bash
# forge train on a CUDA device, run in CI on the simulated one (FORGE_SIMULATE_CUDA, kernels/sim/):
# the same code path as a GPU - weights loaded to the device, batches copied over, loss, optimiser
# and checkpoints on the device - with CPU kernels behind it, so every run must give the CPU run's
# losses and saved weights bit for bit, make no host fallback, and copy at most 4 tensors to the
# device per micro-batch (ids, labels, positions, document ids; the first step one more, the rotary
# table) and 1 back per step (the loss and the gradient norm together). Also: resume on the device,
# and the errors for a device that is not there, too many processes for the GPUs of a node, and a
# model larger than the device's memory. GRPO (rollouts sampled by the engine on the device) agrees with the
# CPU run to rounding.
# usage: test_device_training.sh FORGE_BINARY PYTHON MPIRUN
set -euo pipefail
forge="$(realpath "$1")"
py="$2"
mpirun="$3"
data="$(cd "$(dirname "$0")/../../recipes/data" && pwd)"
here="$(cd "$(dirname "$0")" && pwd)"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$dir"

"$forge" init-model --out m --preset tiny --init-std 0.2 --seed 3 2>/dev/null
cat > r.yaml <<YAML
model:
  path: m
data:
  path: $data/capitals_train.jsonl
  eval_path: $data/capitals_eval.jsonl
  max_seq_len: 96
peft:
  target_modules: all-linear
optim:
  lr: 5.0e-3
train:
  batch_size: 4
  max_steps: 4
logging:
  progress: false
  eval_every: 2
checkpoint:
  resume: never
YAML

# compare.py CPU_RUN DEVICE_RUN MICRO_BATCHES: equal losses, eval losses and files; budgets met.
cat > compare.py <<'PY'
import json, sys, filecmp, os
cpu, dev, mbs = sys.argv[1], sys.argv[2], int(sys.argv[3])
def lines(d): return [json.loads(l) for l in open(os.path.join(d, "metrics.jsonl"))]
a, b = lines(cpu), lines(dev)
assert [l.get("loss") for l in a] == [l.get("loss") for l in b], f"losses differ:\n{a}\n{b}"
assert [l.get("eval_loss") for l in a] == [l.get("eval_loss") for l in b], "eval losses differ"
for l in b:
    if "loss" not in l: continue
    assert l["host_fallbacks"] == 0, f"step {l['step']}: {l['host_fallbacks']} host fallbacks"
    # the first step also moves the rotary frequencies, once; EXTRA_H2D: more per micro-batch
    budget = (4 + int(os.environ.get("EXTRA_H2D", "0"))) * mbs + (l["step"] == 1)
    assert l["h2d"] <= budget, f"step {l['step']}: {l['h2d']} copies to the device (budget {budget})"
    assert l["d2h"] <= 1, f"step {l['step']}: {l['d2h']} copies back (budget 1)"
    assert l["device_mib"] > 0, "no device memory in use"
for sub in ("adapter/adapter_model.safetensors", "model/model.safetensors"):
    if os.path.exists(os.path.join(cpu, sub)):
        assert filecmp.cmp(os.path.join(cpu, sub), os.path.join(dev, sub), shallow=False), f"{sub} differs"
print(f"{dev}: {len(b)} metric lines equal the CPU run's")
PY

# both NAME OVERRIDES...: the CPU run (cpu_NAME) and the simulated-GPU run (gpu_NAME).
both() {
  local name=$1
  shift
  "$forge" train r.yaml output.dir=cpu_$name model.device=cpu "$@" 2> cpu_$name.log || fail "$name on cpu: $(tail -3 cpu_$name.log)"
  FORGE_SIMULATE_CUDA=1 "$forge" train r.yaml output.dir=gpu_$name model.device=cuda "$@" 2> gpu_$name.log ||
    fail "$name on cuda: $(tail -5 gpu_$name.log)"
  grep -q "on cuda:0" gpu_$name.log || fail "$name: the run does not say it is on cuda:0"
}
# run NAME MICRO_BATCHES OVERRIDES...: both runs, compared.
run() {
  local name=$1 mbs=$2
  shift 2
  both "$name" "$@"
  "$py" compare.py cpu_$name gpu_$name "$mbs" || fail "$name: the device run differs from the CPU run"
}
run lora 1
run lora_accum_dropout 2 train.grad_accum=2 peft.dropout=0.1
run lora_logged_every_2 1 logging.every=2 logging.eval_every=0
run qlora_bf16 1 peft.method=qlora model.dtype=bf16
run full 1 peft.method=none
run full_bf16_checkpointed 1 peft.method=none model.dtype=bf16 train.activation_checkpointing=true
# DPO: the reference pass (adapter off) reuses the step's copies, and the metrics come back with
# the loss; precomputed reference values cost one small copy per micro-batch.
dpo=(train.method=dpo data.path=$data/capitals_pref_train.jsonl data.eval_path=$data/capitals_pref_eval.jsonl)
run dpo_lora 1 "${dpo[@]}"
EXTRA_H2D=1 run dpo_full_precomputed 1 "${dpo[@]}" peft.method=none dpo.precompute_ref=true
# GRPO: rollouts sampled by the engine on the device from the live adapter (and from the updated
# weights of a full finetune), the KL term's reference pass with the adapter off.
for i in $(seq 1 12); do echo "{\"prompt\": \"Write a number after $i:\", \"answer\": $((i + 1))}"; done > prompts.jsonl
grpo=(train.method=grpo data.path=prompts.jsonl data.eval_path= grpo.num_generations=4 grpo.max_completion_length=8
      grpo.max_prompt_len=48 grpo.beta=0.05 grpo.iterations=2 "grpo.rewards=[{type: regex, pattern: '[0-9]'}]")
# The CPU engine decodes with packed weight twins, the device's with the trainer's kernels, so
# the runs agree to rounding (compare_runs.py: equal rewards, losses and weights within 1e-5..1e-4)
# rather than bit for bit; no host fallback either way.
grpo_run() {
  local name=$1
  shift
  both "$name" "$@"
  "$py" "$here/../parallel/compare_runs.py" cpu_$name gpu_$name || fail "$name: the device run differs"
  grep -q '"host_fallbacks":0' gpu_$name/metrics.jsonl && ! grep -q '"host_fallbacks":[1-9]' gpu_$name/metrics.jsonl ||
    fail "$name: host fallbacks on the device"
}
grpo_run grpo_lora "${grpo[@]}"
grpo_run grpo_full "${grpo[@]}" peft.method=none

# Resume on the device: SIGTERM after step 2 saves a checkpoint; the rerun repeats the losses.
set +e
FORGE_SIMULATE_CUDA=1 FORGE_TEST_SIGNAL=0:2:15 "$forge" train r.yaml output.dir=gpu_resume model.device=cuda 2> resume1.log
code=$?
set -e
[ $code = 143 ] || fail "expected exit 143 after SIGTERM, got $code: $(tail -3 resume1.log)"
grep -q "stopped after step 2" resume1.log || fail "no stop after step 2: $(tail -3 resume1.log)"
FORGE_SIMULATE_CUDA=1 "$forge" train r.yaml output.dir=gpu_resume model.device=cuda checkpoint.resume=auto \
  2> resume2.log || fail "resumed run: $(tail -3 resume2.log)"
grep -q "resuming from" resume2.log || fail "the rerun did not resume"
"$py" - <<'PY' || fail "the resumed run's losses differ from the uninterrupted run's"
import json
def losses(d): return {l["step"]: l["loss"] for l in map(json.loads, open(d + "/metrics.jsonl")) if "loss" in l}
assert losses("gpu_resume") == losses("gpu_lora"), (losses("gpu_resume"), losses("gpu_lora"))
PY

# Errors, before anything is loaded: no device, a device past the count, more processes than GPUs
# on a node, a model larger than the device's free memory.
if "$forge" train r.yaml output.dir=x model.device=cuda 2> err.txt; then fail "model.device=cuda ran without a GPU"; fi
grep -q "model.device=cuda: no CUDA device to run on" err.txt || fail "no GPU: $(cat err.txt)"
if FORGE_SIMULATE_CUDA=1 "$forge" train r.yaml output.dir=x model.device=cuda:3 2> err.txt; then fail "cuda:3 ran"; fi
grep -q "model.device=cuda:3: this machine has 1 CUDA device(s), so cuda:3 does not exist" err.txt ||
  fail "cuda:3: $(cat err.txt)"
if FORGE_SIMULATE_CUDA=1 "$mpirun" --oversubscribe --allow-run-as-root -x FORGE_SIMULATE_CUDA -x OMP_NUM_THREADS=1 -np 2 \
    "$forge" train r.yaml output.dir=x model.device=cuda parallel.dp=2 > err.txt 2>&1; then
  fail "2 ranks ran on 1 GPU"
fi
grep -q "local rank 1 of its launcher: start at most one process per GPU" err.txt || fail "dp > GPUs: $(cat err.txt)"
if FORGE_SIMULATE_CUDA=1 FORGE_SIMULATE_CUDA_MEMORY_MB=1 "$forge" train r.yaml output.dir=x model.device=cuda \
    peft.method=none 2> err.txt; then
  fail "a model larger than the device trained"
fi
grep -q "needs at least 1.9 MiB on cuda:0 before activations (weights 0.5 MiB, gradients 0.5 MiB, optimiser state 0.9 MiB), and cuda:0 has 1.0 MiB free of 1.0 MiB" err.txt ||
  fail "too large: $(cat err.txt)"
[ ! -e x ] || fail "a refused run wrote its output dir"
echo "device training: 8 configurations equal the CPU, 2 GRPO runs agree with it, resume, 4 errors"
