#!/bin/bash
# forge train / data / merge end to end through the real binary: bad recipes and bad data lines
# are refused with file and line; the token cache is plain HDF5 (read by h5py) and is reused;
# a run killed (SIGKILL) while writing a checkpoint resumes from the previous valid one and repeats
# the uninterrupted run's losses exactly, and so does a run stopped by SIGTERM (or Ctrl-C) after a
# step; QLoRA trains on an NF4 base close to LoRA; the adapter has PEFT's layout and the merged
# model equals base + adapter (both checked by Python code that shares nothing with Forge).
# usage: test_train.sh FORGE_BINARY PYTHON
set -euo pipefail
forge="$(realpath "$1")"
py="$2"
ref="$(cd "$(dirname "$0")/../reference" && pwd)"
data="$(cd "$(dirname "$0")/../../recipes/data" && pwd)"
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
  r: 8
  alpha: 16
  dropout: 0.05
  target_modules: all-linear
optim:
  lr: 5.0e-3
schedule:
  warmup_steps: 2
train:
  batch_size: 4
  grad_accum: 2
  max_steps: 8
checkpoint:
  every: 2
  keep: 3
logging:
  progress: false
  eval_every: 4
output:
  dir: run
YAML

# Bad recipes: nothing runs, the message names file, line and key.
sed 's/  lr: 5.0e-3/  lr: 5.0e-3\n  betas: 0.9/' r.yaml > bad.yaml
if "$forge" train bad.yaml 2> err.txt; then fail "a recipe with an unknown key trained"; fi
grep -q "bad.yaml:14: unknown key 'optim.betas' (did you mean 'optim.beta1'?)" err.txt || fail "unknown key: $(cat err.txt)"
if "$forge" train r.yaml train.batch_size=zero 2> err.txt; then fail "bad override trained"; fi
grep -q "key 'train.batch_size': expected an integer, got 'zero'" err.txt || fail "override type: $(cat err.txt)"
[ ! -e run ] || fail "a bad recipe created the output dir"
"$forge" train r.yaml --check | grep -q "max_steps: 8" || fail "--check does not print the resolved recipe"

# Malformed dataset lines: file and line, or skipped and counted.
{ head -3 "$data/capitals_train.jsonl"; echo '{"messages": [{"role": "user"'; echo '{"messages": "hi"}'; } > broken.jsonl
if "$forge" train r.yaml data.path=broken.jsonl output.dir=broken 2> err.txt; then fail "malformed data trained"; fi
grep -q "broken.jsonl:4: not valid JSON" err.txt || fail "malformed line: $(cat err.txt)"
"$forge" train r.yaml data.path=broken.jsonl data.skip_malformed=true train.max_steps=1 output.dir=broken > /dev/null 2> err.txt \
  || fail "skip_malformed run failed: $(cat err.txt)"
grep -q "2 malformed lines skipped (first: .*broken.jsonl:4: not valid JSON" err.txt || fail "skip count: $(cat err.txt)"

# The token cache: written by forge data prepare, plain HDF5, reused by forge train.
"$forge" data prepare r.yaml > /dev/null 2> err.txt
"$py" - run/data/train.h5 <<'PY'
import sys, h5py
f = h5py.File(sys.argv[1], "r")
n = len(f["offsets"]) - 1
assert n == 120 and f["offsets"][-1] == len(f["tokens"]) == len(f["mask"]), (n, len(f["tokens"]))
assert 0 < f["mask"][:].sum() < len(f["mask"]), "responses only"
assert f.attrs["format"] == "chat" and len(f.attrs["fingerprint"]) == 16
PY

# Uninterrupted run, then the same run killed while writing the step-6 checkpoint and resumed.
"$forge" train r.yaml output.dir=full > /dev/null 2> full.log || fail "training failed: $(cat full.log)"
set +e
FORGE_TEST_CRASH_IN_CHECKPOINT=6 "$forge" train r.yaml > /dev/null 2> first.log
code=$?
set -e
[ $code = 137 ] || fail "expected death by SIGKILL (137), got $code: $(cat first.log)"
grep -q "(from the token cache)" first.log || fail "the prepared token cache was not reused"
[ -f run/checkpoints/step_00000004.h5 ] && [ ! -f run/checkpoints/step_00000006.h5 ] || fail "checkpoints: $(ls run/checkpoints)"
[ -f run/checkpoints/step_00000006.h5.tmp ] || fail "no torn temp file left by the crash"
"$forge" train r.yaml > /dev/null 2> resume.log || fail "resume failed: $(cat resume.log)"
grep -q "resuming from run/checkpoints/step_00000004.h5 (step 4 of 8)" resume.log || fail "resume: $(cat resume.log)"
"$py" - full/metrics.jsonl run/metrics.jsonl <<'PY'
import json, sys
def lines(p): return [json.loads(l) for l in open(p)]
a, b = lines(sys.argv[1]), lines(sys.argv[2])
la = [(d["step"], d["loss"]) for d in a if "loss" in d]
lb = [(d["step"], d["loss"]) for d in b if "loss" in d]
assert [s for s, _ in la] == list(range(1, 9)), la
assert la == lb, f"resumed losses differ:\n{la}\n{lb}"
ea = [(d["step"], d["eval_loss"]) for d in a if "eval_loss" in d]
eb = [(d["step"], d["eval_loss"]) for d in b if "eval_loss" in d]
assert ea == eb and len(ea) == 2, (ea, eb)
for d in a:
    if "loss" in d:
        assert {"step", "loss", "lr", "tokens_per_s"} <= set(d), d
PY
grep -q "<polyline" run/loss_curve.svg || fail "no loss curve"

# A stop request (SIGTERM as step 3 starts): step 3 finishes, its checkpoint is written, the exit
# code is the signal's, no adapter appears; resuming repeats the uninterrupted run's losses.
set +e
FORGE_TEST_SIGNAL=0:3:15 "$forge" train r.yaml output.dir=stopped checkpoint.every=0 > /dev/null 2> stop.log
code=$?
set -e
[ $code = 143 ] || fail "expected exit 143 after SIGTERM, got $code: $(cat stop.log)"
grep -q "SIGTERM: stopped after step 3 of 8; checkpoint stopped/checkpoints/step_00000003.h5" stop.log || fail "stop: $(cat stop.log)"
[ "$(ls stopped/checkpoints)" = step_00000003.h5 ] && [ ! -e stopped/adapter ] || fail "after the stop: $(ls -R stopped)"
"$forge" train r.yaml output.dir=stopped checkpoint.every=0 > /dev/null 2> resume2.log || fail "resume failed: $(cat resume2.log)"
grep -q "resuming from stopped/checkpoints/step_00000003.h5 (step 3 of 8)" resume2.log || fail "resume: $(cat resume2.log)"
"$py" - full/metrics.jsonl stopped/metrics.jsonl <<'PY'
import json, sys
a, b = ([(d["step"], d["loss"]) for d in map(json.loads, open(p)) if "loss" in d] for p in sys.argv[1:])
assert a == b, f"losses after a stop and resume differ:\n{a}\n{b}"
PY
# Ctrl-C from outside while it runs: stops with a checkpoint at the last logged step.
"$forge" train r.yaml output.dir=ctrlc train.max_steps=100000 2> ctrlc.log > /dev/null &
pid=$!
for _ in $(seq 300); do [ "$(cat ctrlc/metrics.jsonl 2>/dev/null | wc -l)" -ge 3 ] && break; sleep 0.1; done
kill -INT $pid
set +e
wait $pid
code=$?
set -e
[ $code = 130 ] || fail "expected exit 130 after SIGINT, got $code: $(cat ctrlc.log)"
last=$("$py" -c 'import json,sys; print(max(json.loads(l)["step"] for l in open(sys.argv[1])))' ctrlc/metrics.jsonl)
[ -f "ctrlc/checkpoints/$(printf 'step_%08d.h5' "$last")" ] || fail "no checkpoint at step $last: $(ls ctrlc/checkpoints)"
# Storms of SIGUSR1 while steps run: the first stops the run, the rest are ignored. No signal may
# interrupt a computing thread (a handler's frame overwrote oneDNN's data below the stack pointer
# and corrupted the heap: 4 Ctrl-C stops in 200 before stop_request.h's watcher thread; 3 of 5
# storms aborted). Signals that come after the run's end act as their default: exit 138 too.
for round in 1 2 3; do
  "$forge" train r.yaml output.dir=storm$round train.max_steps=100000 data.max_seq_len=256 train.batch_size=16 \
    2> storm.log > /dev/null &
  pid=$!
  for _ in $(seq 300); do [ -s storm$round/metrics.jsonl ] && break; sleep 0.1; done
  "$py" - $pid <<'PY'
import os, signal, sys
try:
    for _ in range(100000):
        os.kill(int(sys.argv[1]), signal.SIGUSR1)
except ProcessLookupError:
    pass
PY
  set +e
  wait $pid
  code=$?
  set -e
  [ $code = 138 ] || fail "storm $round: expected exit 138 after SIGUSR1s, got $code: $(tail -3 storm.log)"
  grep -q "SIGUSR1: stopped after step" storm.log || fail "storm $round: $(tail -3 storm.log)"
done

# PEFT layout, merge, and the merged model in Forge and in the independent reader.
"$py" "$ref/check_peft_files.py" adapter run/adapter m > /dev/null
"$forge" merge --base m --adapter run/adapter --out merged --max-shard-mb 0.2 > /dev/null 2>&1 || fail "merge failed"
[ -f merged/model.safetensors.index.json ] || fail "merge did not shard"
"$py" "$ref/check_peft_files.py" merged m run/adapter merged > /dev/null
"$forge" generate --model merged --chat --prompt "What is the capital of France?" --max-tokens 8 > /dev/null 2>&1 \
  || fail "generate from the merged model failed"

# QLoRA: the base's linear weights in NF4, the same adapter layout; its first loss is within 5%
# of LoRA's on the full-precision base (this model's 0.2-std weights: 7.44 against 7.31) and it
# learns (tests/peft/test_nf4.cpp checks the NF4 weights and linear exactly against PyTorch).
"$forge" train r.yaml peft.method=qlora output.dir=qlora > /dev/null 2> qlora.log || fail "qlora failed: $(cat qlora.log)"
grep -q "QLoRA: linear weights quantised to NF4" qlora.log || fail "no quantisation report: $(cat qlora.log)"
"$py" "$ref/check_peft_files.py" adapter qlora/adapter m > /dev/null
"$py" - full/metrics.jsonl qlora/metrics.jsonl <<'PY'
import json, sys
a, b = ([d["loss"] for d in map(json.loads, open(p)) if "loss" in d] for p in sys.argv[1:])
assert len(a) == len(b) == 8, (a, b)
assert abs(a[0] - b[0]) < 0.05 * a[0], f"step 1: LoRA {a[0]}, QLoRA {b[0]}"
assert b[-1] < b[0] - 0.5 * (a[0] - a[-1]), f"QLoRA did not learn: {b}"
PY
"$forge" merge --base m --adapter qlora/adapter --out qmerged > /dev/null 2>&1 || fail "merging a QLoRA adapter failed"

# Full finetune writes a loadable model.
"$forge" train r.yaml peft=none train.max_steps=2 output.dir=fullft > /dev/null 2>&1 || fail "full finetune failed"
"$forge" generate --model fullft/model --prompt "The" --max-tokens 4 > /dev/null 2>&1 || fail "full-finetune model does not load"
# Every shipped recipe is valid (checked against the tiny model in place of the real one).
src="$(cd "$(dirname "$ref")/.." && pwd)"
for r in "$src"/recipes/*.yaml; do
  (cd "$src" && "$forge" train "$r" model.path="$dir/m" output.dir="$dir/check" --check > /dev/null) \
    || fail "shipped recipe $r does not validate"
done
echo "forge train/data/merge: all checks passed"
