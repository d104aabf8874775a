#!/bin/bash
# Distributed training on this machine: real OpenMPI ranks (mpirun --oversubscribe, CPU, MPI
# backend) training recipes/tiny_sft.yaml. Every parallel configuration must give the losses,
# eval losses and final weights of the single-process run with the same global batch
# (compare_runs.py); a wrong mesh size is refused; a stalled rank stops the job within the
# timeout with an error naming it; a rank killed while writing a checkpoint leaves the ranks'
# checkpoints uneven, and the rerun resumes where all ranks agree and repeats the losses.
# usage: test_distributed.sh FORGE_BINARY PYTHON
set -euo pipefail
forge="$(realpath "$1")"
py="$2"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export OMP_NUM_THREADS=1
mpi=(mpirun --oversubscribe --allow-run-as-root -x OMP_NUM_THREADS)
cd "$root"
base=(recipes/tiny_sft.yaml model.path="$dir/base" data.eval_path=recipes/data/capitals_eval.jsonl logging.eval_every=10)

train() {  # train NAME RANKS overrides...: one run into $dir/NAME
  local name=$1 np=$2
  shift 2
  if [ "$np" = 1 ]; then "$forge" train "${base[@]}" output.dir="$dir/$name" "$@" > "$dir/$name.log" 2>&1
  else "${mpi[@]}" -np "$np" "$forge" train "${base[@]}" output.dir="$dir/$name" "$@" > "$dir/$name.log" 2>&1; fi \
    || { tail -20 "$dir/$name.log"; fail "$name did not train"; }
}
same() {  # same REF RUN: the parallel run equals the single-process one
  printf '%-28s ' "$2"
  "$py" "$here/compare_runs.py" "$dir/$1" "$dir/$2" || fail "$2 differs from $1"
}

# A wrong mesh is refused before anything runs.
if "${mpi[@]}" -np 2 "$forge" train "${base[@]}" output.dir="$dir/bad" > "$dir/bad.log" 2>&1; then fail "dp1 on 2 ranks ran"; fi
grep -q "parallel: dp1 x tp1 x pp1 = 1 ranks, but 2 processes were started (launch with: mpirun -np 1" "$dir/bad.log" \
  || fail "mesh error: $(grep error "$dir/bad.log")"
if "$forge" train "${base[@]}" parallel.dp=2 output.dir="$dir/bad1" 2> "$dir/bad1.log"; then fail "dp2 in one process ran"; fi
grep -q "dp2 x tp1 x pp1 = 2 ranks, but 1 process was started (launch with: mpirun -np 2" "$dir/bad1.log" || fail "$(cat "$dir/bad1.log")"

for m in lora none; do
  train $m-single 1 peft.method=$m train.batch_size=4
  for z in 0 1 2; do
    train $m-dp2-zero$z 2 peft.method=$m parallel.dp=2 parallel.zero=$z train.batch_size=2
    same $m-single $m-dp2-zero$z
  done
done
# Four ranks of one row each; gradient accumulation (no reduction on the first micro-batch).
train none-dp4-zero2 4 peft.method=none parallel.dp=4 parallel.zero=2 train.batch_size=1
same none-single none-dp4-zero2
train lora-accum-single 1 train.batch_size=4 train.grad_accum=2
train lora-accum-dp2-zero2 2 parallel.dp=2 parallel.zero=2 train.batch_size=2 train.grad_accum=2
same lora-accum-single lora-accum-dp2-zero2
# Small buckets: many reductions in flight during backward.
train none-dp2-buckets 2 peft.method=none parallel.dp=2 parallel.bucket_mb=0.01 train.batch_size=2
same none-single none-dp2-buckets

# A stalled rank: the others stop within the timeout and name it, the collective and the step.
start=$(date +%s)
if FORGE_TEST_STALL=1:3 "${mpi[@]}" -x FORGE_TEST_STALL -np 2 "$forge" train "${base[@]}" parallel.dp=2 \
     train.batch_size=2 parallel.timeout_s=3 output.dir="$dir/stall" > "$dir/stall.log" 2>&1; then fail "a stalled run succeeded"; fi
took=$(( $(date +%s) - start ))
grep -q "rank 0: all_reduce on the dp group (world ranks 0,1) at step 3 did not finish within 3 s: rank 1 never reached it" \
  "$dir/stall.log" || fail "stall error: $(grep -i error "$dir/stall.log")"
[ "$took" -lt 30 ] || fail "the stalled job took ${took}s to stop"
echo "stalled rank 1 named, job stopped after ${took}s"

# Rank 0 is killed while writing step 6's checkpoint (rank 1 may have written it): the rerun
# resumes from the newest step both ranks hold and repeats the uninterrupted losses.
ck=(parallel.dp=2 parallel.zero=2 train.batch_size=2 checkpoint.every=2 checkpoint.keep=3 checkpoint.resume=auto
    peft.method=none output.dir="$dir/crash")
if "${mpi[@]}" -np 1 -x FORGE_TEST_CRASH_IN_CHECKPOINT=6 "$forge" train "${base[@]}" "${ck[@]}" : \
     -np 1 "$forge" train "${base[@]}" "${ck[@]}" > "$dir/crash.log" 2>&1; then fail "the crashing run succeeded"; fi
ls "$dir/crash/checkpoints/rank_00000" | grep -q "step_00000006.h5$" && fail "rank 0 has a step-6 checkpoint"
"${mpi[@]}" -np 2 "$forge" train "${base[@]}" "${ck[@]}" > "$dir/resume.log" 2>&1 || { tail "$dir/resume.log"; fail "resume"; }
grep -q "resuming from .*step_00000004.h5 (step 4 of 20)" "$dir/resume.log" || fail "resume point: $(grep resum "$dir/resume.log")"
same none-single crash
echo "distributed: all checks passed"
