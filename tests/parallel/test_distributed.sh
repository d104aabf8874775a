#!/bin/bash
# Distributed training on this machine: real OpenMPI ranks (mpirun --oversubscribe, CPU, MPI
# backend) training recipes/tiny_sft.yaml with data, tensor and pipeline parallelism, ZeRO and
# their combinations (up to dp2 x tp2 x pp2 on 8 ranks), DPO on preference pairs and GRPO. Every configuration must give the losses,
# eval losses and final weights of the single-process run with the same global batch
# (compare_runs.py); a wrong mesh size is refused; a stalled rank stops the job within the
# timeout with an error naming it; a rank killed while writing a checkpoint leaves the ranks'
# checkpoints uneven, and the rerun resumes where all ranks agree and repeats the losses (also
# when a rank's copy of that step is corrupt: both go further back); a stop
# signal that reaches one rank stops both after the same step with a checkpoint.
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

# Every mesh, for LoRA and a full finetune (tiny has tied embeddings: with pp the last stage's
# head is a copy of the first stage's embedding). Global batch 4 rows everywhere.
for m in lora none; do
  train $m-single 1 peft.method=$m train.batch_size=4
  for z in 0 1 2 3; do
    train $m-dp2-zero$z 2 peft.method=$m parallel.dp=2 parallel.zero=$z train.batch_size=2
    same $m-single $m-dp2-zero$z
  done
  train $m-tp2 2 peft.method=$m parallel.tp=2
  same $m-single $m-tp2
  for sched in 1f1b gpipe; do
    train $m-pp2-$sched 2 peft.method=$m parallel.pp=2 parallel.schedule=$sched
    same $m-single $m-pp2-$sched
  done
  train $m-dp2xtp2 4 peft.method=$m parallel.dp=2 parallel.tp=2 train.batch_size=2
  same $m-single $m-dp2xtp2
  train $m-tp2xpp2 4 peft.method=$m parallel.tp=2 parallel.pp=2
  same $m-single $m-tp2xpp2
  train $m-dp2xpp2-zero2 4 peft.method=$m parallel.dp=2 parallel.pp=2 parallel.zero=2 train.batch_size=2
  same $m-single $m-dp2xpp2-zero2
  train $m-dp2xtp2xpp2-zero1 8 peft.method=$m parallel.dp=2 parallel.tp=2 parallel.pp=2 parallel.zero=1 train.batch_size=2
  same $m-single $m-dp2xtp2xpp2-zero1
done
# DPO: a pair's two rows stay on one rank; the reference is the adapter switched off (LoRA) or a
# frozen copy split like the policy (full finetune). Global batch 4 pairs everywhere.
dpo=(train.method=dpo data.format=auto data.path=recipes/data/capitals_pref_train.jsonl
     data.eval_path=recipes/data/capitals_pref_eval.jsonl train.max_steps=10 logging.eval_every=5)
train dpo-lora-single 1 "${dpo[@]}" train.batch_size=4
for run in "dp2-zero3 2 parallel.dp=2 parallel.zero=3 train.batch_size=2" "tp2 2 parallel.tp=2 train.batch_size=4" \
           "pp2 2 parallel.pp=2 train.batch_size=4"; do
  read -r name np rest <<< "$run"
  train dpo-lora-$name "$np" "${dpo[@]}" $rest
  same dpo-lora-single dpo-lora-$name
done
train dpo-none-single 1 "${dpo[@]}" peft.method=none train.batch_size=4
train dpo-none-dp2xtp2-zero2 4 "${dpo[@]}" peft.method=none parallel.dp=2 parallel.tp=2 parallel.zero=2 train.batch_size=2
same dpo-none-single dpo-none-dp2xtp2-zero2
train dpo-none-pp2 2 "${dpo[@]}" peft.method=none parallel.pp=2 train.batch_size=4
same dpo-none-single dpo-none-pp2
# GRPO: each dp rank samples its share of the prompts with the engine over its replica of the
# weights (the same seeds as the single process), two optimiser steps per batch of rollouts.
for i in $(seq 1 16); do echo "{\"prompt\": \"Write a number after $i:\"}"; done > "$dir/prompts.jsonl"
grpo=(train.method=grpo data.format=auto data.path="$dir/prompts.jsonl" data.eval_path= train.max_steps=8
      grpo.num_generations=4 grpo.max_completion_length=8 grpo.max_prompt_len=48 grpo.iterations=2 grpo.beta=0.05
      "grpo.rewards=[{type: regex, pattern: '[0-9]'}]" logging.eval_every=0 optim.lr=1e-2)
train grpo-lora-single 1 "${grpo[@]}" train.batch_size=4
train grpo-lora-dp2 2 "${grpo[@]}" parallel.dp=2 train.batch_size=2
same grpo-lora-single grpo-lora-dp2
train grpo-none-single 1 "${grpo[@]}" peft.method=none optim.lr=1e-3 train.batch_size=4
train grpo-none-dp2-zero2 2 "${grpo[@]}" peft.method=none optim.lr=1e-3 parallel.dp=2 parallel.zero=2 train.batch_size=2
same grpo-none-single grpo-none-dp2-zero2
# ZeRO-3 with tensor parallelism, with gradient accumulation (layers gathered and released per
# micro-batch), and on 4 ranks of one row each (ranks with an empty share replay the gathers).
train none-dp2xtp2-zero3 4 peft.method=none parallel.dp=2 parallel.tp=2 parallel.zero=3 train.batch_size=2
same none-single none-dp2xtp2-zero3
train none-dp4-zero3 4 peft.method=none parallel.dp=4 parallel.zero=3 train.batch_size=1
same none-single none-dp4-zero3
train lora-accum-dp2-zero3 2 parallel.dp=2 parallel.zero=3 train.batch_size=2 train.grad_accum=2
# (compared below, after its single-process reference is made)
# ZeRO-3 memory: between steps a rank holds only its slice of the f32 masters and AdamW moments,
# 1/N of the single process's weights and state (slices are ceil(P/N) elements).
"$py" - "$dir" <<'PY' || fail "ZeRO-3 memory"
import re, sys
d = sys.argv[1]
def held(run):
    return [float(x) for x in re.findall(r"rank \d+ holds ([0-9.]+) MiB", open(f"{d}/{run}.log").read())]
one = held("none-single")[0]
for run, n in [("none-dp2-zero3", 2), ("none-dp4-zero3", 4)]:
    for mib in held(run):
        assert abs(mib - one / n) <= 0.02 * one / n, f"{run}: a rank holds {mib} MiB, expected {one / n:.3f} (1/{n} of {one})"
    print(f"ZeRO-3 dp{n}: each rank holds {max(held(run)):.3f} MiB of weights + optimiser state; one process {one:.3f} MiB")
PY
# ZeRO-3 in every mesh with 2 micro-batches per step: at an epoch's end one dp replica has a
# single micro-batch and runs a phantom in the schedule's place (1F1B reorders them; so does GPipe).
train none-accum2-single 1 peft.method=none train.batch_size=4 train.grad_accum=2
train none-accum2-dp2xtp2xpp2-zero3 8 peft.method=none parallel.dp=2 parallel.tp=2 parallel.pp=2 parallel.zero=3 \
  train.batch_size=2 train.grad_accum=2
same none-accum2-single none-accum2-dp2xtp2xpp2-zero3
train none-accum2-dp2-zero3-gpipe 2 peft.method=none parallel.dp=2 parallel.zero=3 parallel.schedule=gpipe \
  train.batch_size=2 train.grad_accum=2
same none-accum2-single none-accum2-dp2-zero3-gpipe

# Pipelines with 4 micro-batches per step (1F1B interleaves them) against the same accumulation.
train none-accum4-single 1 peft.method=none train.batch_size=1 train.grad_accum=4
train none-accum4-dp2xpp2 4 peft.method=none parallel.dp=2 parallel.pp=2 train.batch_size=1 train.grad_accum=2
# (dp2 x accumulation 2 = the single run's 4 micro-batches of one row)
same none-accum4-single none-accum4-dp2xpp2
# SGD has no AdamW amplification of near-zero gradients: every element must agree to 1e-5.
train sgd-single 1 peft.method=none optim.name=sgd optim.lr=0.3
train sgd-dp2xtp2xpp2 8 peft.method=none optim.name=sgd optim.lr=0.3 parallel.dp=2 parallel.tp=2 parallel.pp=2 train.batch_size=2
printf '%-28s ' sgd-dp2xtp2xpp2
"$py" "$here/compare_runs.py" "$dir/sgd-single" "$dir/sgd-dp2xtp2xpp2" 1e-5 || fail "sgd-dp2xtp2xpp2 differs"
# Qwen3 and Gemma 3 (QK-norm: per-head norm weights whose gradients tp ranks must sum), Gemma 2
# (soft-capped logits split by vocabulary under tp; sandwich norms), Phi-3 (fused qkv_proj and
# gate_up_proj: each of q, k, v, gate, up split on its own, LoRA B too), LoRA and full.
for arch in qwen3 gemma3 gemma2 phi3; do
  "$forge" init-model --arch $arch --preset tiny --out "$dir/$arch" --seed 5 2>/dev/null
  for m in lora none; do
    train $arch-$m-single 1 peft.method=$m model.path="$dir/$arch" train.max_steps=8
    for mesh in tp pp; do
      train $arch-$m-${mesh}2 2 peft.method=$m model.path="$dir/$arch" train.max_steps=8 parallel.$mesh=2
      same $arch-$m-single $arch-$m-${mesh}2
    done
  done
done
# Sizes tp cannot split are refused with the reason.
if "${mpi[@]}" -np 3 "$forge" train "${base[@]}" parallel.tp=3 output.dir="$dir/tp3" > "$dir/tp3.log" 2>&1; then fail "tp3 ran"; fi
grep -q "parallel.tp=3 must divide the model's num_attention_heads (4)" "$dir/tp3.log" || fail "tp3: $(grep error "$dir/tp3.log")"

# Four ranks of one row each; gradient accumulation (no reduction on the first micro-batch).
train none-dp4-zero2 4 peft.method=none parallel.dp=4 parallel.zero=2 train.batch_size=1
same none-single none-dp4-zero2
train lora-accum-single 1 train.batch_size=4 train.grad_accum=2
train lora-accum-dp2-zero2 2 parallel.dp=2 parallel.zero=2 train.batch_size=2 train.grad_accum=2
same lora-accum-single lora-accum-dp2-zero2
same lora-accum-single lora-accum-dp2-zero3
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
# Then rank 0 loses step 20's checkpoint and a byte of rank 1's step 18 flips: rank 1 cannot use
# the step both hold (18), so both go back to 16, and the run ends as the uninterrupted one.
rm "$dir/crash/checkpoints/rank_00000/step_00000020.h5"
rm -r "$dir/crash/model"
"$py" - "$dir/crash/checkpoints/rank_00001/step_00000018.h5" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[len(b) // 2] ^= 0x10
open(sys.argv[1], "wb").write(bytes(b))
PY
"${mpi[@]}" -np 2 "$forge" train "${base[@]}" "${ck[@]}" > "$dir/resume2.log" 2>&1 || { tail "$dir/resume2.log"; fail "resume 2"; }
grep -q "rank 1: skipping checkpoint .*rank_00001/step_00000018.h5: corrupt" "$dir/resume2.log" || fail "$(cat "$dir/resume2.log")"
grep -q "resuming from .*step_00000016.h5 (step 16 of 20)" "$dir/resume2.log" || fail "$(grep resum "$dir/resume2.log")"
same none-single crash

# Resume from per-rank checkpoints: drop everything after step 8 (as if the job had died there)
# and rerun; metrics.jsonl continues from step 8 and the result equals the uninterrupted single
# process. tp2 x pp2 (the last stage's tied head copy is not in its checkpoint), and ZeRO-3 (its
# checkpoints hold the gathered weights and each rank's master slice).
resumes() {  # resumes NAME RANKS overrides...
  local name=$1 np=$2
  shift 2
  local o=(peft.method=none checkpoint.every=4 checkpoint.keep=10 checkpoint.resume=auto output.dir="$dir/$name" "$@")
  train "$name" "$np" "${o[@]}"
  for r in "$dir/$name"/checkpoints/rank_*; do rm -f "$r"/step_0000001[2-9].h5 "$r"/step_00000020.h5; done
  rm -rf "$dir/$name/model"
  "${mpi[@]}" -np "$np" "$forge" train "${base[@]}" "${o[@]}" > "$dir/$name.2.log" 2>&1 || { tail "$dir/$name.2.log"; fail "$name"; }
  grep -q "resuming from .*step_00000008.h5 (step 8 of 20)" "$dir/$name.2.log" || fail "$name: $(grep resum "$dir/$name.2.log")"
  same none-single "$name"
}

# A stop request that reaches rank 1 only (SIGUSR1 as step 5 starts): both ranks stop after step 5
# with its checkpoint, and the rerun resumes there and repeats the single process.
st=(peft.method=none parallel.dp=2 parallel.zero=3 train.batch_size=2 checkpoint.every=0 checkpoint.resume=auto
    output.dir="$dir/stop")
if FORGE_TEST_SIGNAL=1:5:10 "${mpi[@]}" -x FORGE_TEST_SIGNAL -np 2 "$forge" train "${base[@]}" "${st[@]}" > "$dir/stop.log" 2>&1
then fail "the stopped run exited 0"; fi
grep -q "SIGUSR1: stopped after step 5 of 20" "$dir/stop.log" || fail "stop: $(tail "$dir/stop.log")"
for r in 0 1; do
  [ "$(ls "$dir/stop/checkpoints/rank_0000$r")" = step_00000005.h5 ] || fail "rank $r: $(ls "$dir/stop/checkpoints/rank_0000$r")"
done
"${mpi[@]}" -np 2 "$forge" train "${base[@]}" "${st[@]}" > "$dir/stop.2.log" 2>&1 || { tail "$dir/stop.2.log"; fail "stop resume"; }
grep -q "resuming from .*step_00000005.h5 (step 5 of 20)" "$dir/stop.2.log" || fail "stop resume: $(grep resum "$dir/stop.2.log")"
same none-single stop

resumes resume-tp2xpp2 4 parallel.tp=2 parallel.pp=2
resumes resume-dp2-zero3 2 parallel.dp=2 parallel.zero=3 train.batch_size=2
echo "distributed: all checks passed"
