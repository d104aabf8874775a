#!/bin/bash
# Checkpoints under faults, through the real binary (issue 29): a checkpoint whose bytes changed
# after it was written (a flipped byte, a truncated copy) is skipped with a message naming it and
# the previous one is resumed from, repeating the uninterrupted run's losses and weights; when
# none is usable the run stops naming the folder; a disk that fills up during a checkpoint write
# (a file size limit, with SIGXFSZ ignored so the write fails as on a full disk) stops the run
# with the file and the reason, leaves no torn file and keeps the previous checkpoint; an output
# folder that cannot be written is refused before any step (with a read-only bind mount, where
# the system allows one).
# usage: test_checkpoint_faults.sh FORGE_BINARY PYTHON
set -euo pipefail
forge="$(realpath "$1")"
py="$2"
data="$(cd "$(dirname "$0")/../../recipes/data" && pwd)"
dir=$(mktemp -d)
trap 'umount "$dir/ro" 2>/dev/null || true; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$dir"

"$forge" init-model --out m --preset tiny --init-std 0.2 --seed 3 2>/dev/null
cat > r.yaml <<YAML
model:
  path: m
data:
  path: $data/capitals_train.jsonl
  max_seq_len: 96
peft: none
optim:
  lr: 1.0e-3
train:
  batch_size: 4
  max_steps: 6
checkpoint:
  every: 2
  keep: 5
logging:
  progress: false
YAML

"$forge" train r.yaml output.dir=full > /dev/null 2> full.log || fail "training failed: $(tail -3 full.log)"
# same RUN: the losses and the final model of the uninterrupted run.
same() {
  "$py" - full "$1" <<'PY' || fail "$1 differs from the uninterrupted run"
import json, sys, filecmp
def losses(d): return {l["step"]: l["loss"] for l in map(json.loads, open(d + "/metrics.jsonl")) if "loss" in l}
a, b = losses(sys.argv[1]), losses(sys.argv[2])
assert a == b and len(a) == 6, (a, b)
assert filecmp.cmp(sys.argv[1] + "/model/model.safetensors", sys.argv[2] + "/model/model.safetensors", shallow=False)
PY
}
# resumed RUN FROM_STEP: trains RUN on, and says it resumed from FROM_STEP.
resumed() {
  "$forge" train r.yaml output.dir="$1" > /dev/null 2> "$1.log" || fail "$1: $(tail -3 "$1.log")"
  grep -q "resuming from $1/checkpoints/$(printf 'step_%08d.h5' "$2")" "$1.log" || fail "$1: $(grep -i 'resum\|skip' "$1.log")"
}

# A flipped byte in the newest checkpoint's data (it still opens as HDF5), and a truncated one.
cp -r full flipped
ck=flipped/checkpoints/step_00000006.h5
size=$(stat -c %s $ck)
"$py" - $ck <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0x10  # inside the tensors' data
open(p, "wb").write(bytes(b))
PY
rm -r flipped/model
resumed flipped 4
grep -q "skipping checkpoint flipped/checkpoints/step_00000006.h5: corrupt" flipped.log || fail "flip: $(grep skip flipped.log)"
same flipped
cp -r full truncated
truncate -s $((size / 2)) truncated/checkpoints/step_00000006.h5
rm -r truncated/model
resumed truncated 4
grep -q "skipping checkpoint truncated/checkpoints/step_00000006.h5" truncated.log || fail "truncated: $(cat truncated.log)"
same truncated

# None usable: the run stops naming the folder, and checkpoint.resume=never starts over.
cp -r full nothing
for f in nothing/checkpoints/*.h5; do truncate -s 100 "$f"; done
if "$forge" train r.yaml output.dir=nothing > /dev/null 2> nothing.log; then fail "trained on with no usable checkpoint"; fi
grep -q "nothing/checkpoints: no usable checkpoint" nothing.log || fail "none usable: $(tail -3 nothing.log)"
"$forge" train r.yaml output.dir=nothing checkpoint.resume=never > /dev/null 2> never.log || fail "resume=never: $(tail -3 never.log)"

# The disk fills up while step 4's checkpoint is written (a limit below one checkpoint's size,
# set after step 3's was written): a clear error, no torn file, no crash on the way out, step 3's
# checkpoint kept; the rerun resumes from it and ends as the uninterrupted run.
set +e  # (a stop request as step 3 starts: step 3's checkpoint, then exit 143)
FORGE_TEST_SIGNAL=0:3:15 "$forge" train r.yaml output.dir=disk > /dev/null 2> disk1.log
code=$?
set -e
[ $code = 143 ] && [ -f disk/checkpoints/step_00000003.h5 ] || fail "stop after step 3: $code $(tail -3 disk1.log)"
limit=$(( $(stat -c %s disk/checkpoints/step_00000003.h5) / 2048 ))  # in 1 KiB blocks: half a checkpoint
set +e
(trap '' XFSZ; ulimit -f $limit; exec "$forge" train r.yaml output.dir=disk > /dev/null 2> disk2.log)
code=$?
set -e
[ $code = 1 ] || fail "expected exit 1 with the error, got $code: $(tail -3 disk2.log)"
grep -q "step_00000004.h5.tmp: .*(File too large)" disk2.log || fail "full disk: $(tail -3 disk2.log)"
[ ! -e disk/checkpoints/step_00000004.h5.tmp ] && [ ! -e disk/checkpoints/step_00000004.h5 ] || fail "$(ls disk/checkpoints)"
[ -f disk/checkpoints/step_00000003.h5 ] || fail "step 3's checkpoint is gone"
resumed disk 3
same disk

# An output folder that cannot be written: refused before the first step.
mkdir ro
if mount --bind ro ro 2>/dev/null && mount -o remount,bind,ro ro 2>/dev/null; then
  if "$forge" train r.yaml output.dir=ro/run > /dev/null 2> ro.log; then fail "trained into a read-only folder"; fi
  grep -q "Read-only file system" ro.log || fail "read-only: $(tail -3 ro.log)"
  ! grep -q "steps of" ro.log || fail "read-only: training started before the error"
  umount ro
  echo "checkpoint faults: flipped, truncated, none usable, full disk, read-only folder"
else
  echo "checkpoint faults: flipped, truncated, none usable, full disk (read-only folder skipped: no bind mount here)"
fi
