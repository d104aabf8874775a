#!/bin/bash
# A rank dies by SIGKILL at a random moment of a 4-rank job (dp2 x tp2 and dp2 x pp2, ZeRO-3),
# TRIALS times (issue 29). Odd trials kill a random rank from outside at a random point (in
# start-up, or a moment after a random step's checkpoint appeared: inside the next step or its
# checkpoint write); even trials make a random rank die
# halfway through writing a random step's checkpoint (FORGE_TEST_CRASH_IN_CHECKPOINT). Every trial
# must end the whole job within parallel.timeout_s + 5 s with a message naming the dead rank, and
# the relaunched job must resume from the newest checkpoint every rank holds complete and end with
# exactly (byte for byte) the model of the uninterrupted run.
# usage: test_kill_soak.sh FORGE_BINARY PYTHON TRIALS [SEED]
set -euo pipefail
forge="$(realpath "$1")"
py="$2"
trials="$3"
seed="${4:-$$}"
RANDOM=$seed
echo "kill soak: $trials trials, seed $seed"
root="$(cd "$(dirname "$0")/../.." && pwd)"
dir=$(mktemp -d)
pids_of() {  # pids_of PATTERN: processes with an argument matching it (a minimal Debian has no pgrep)
  grep -lzE -- "$1" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3 || true
}
trap 'for p in $(pids_of "^output.dir=$dir/"); do kill -9 $p 2>/dev/null; done; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export OMP_NUM_THREADS=1
mpi=(mpirun --oversubscribe --allow-run-as-root -x OMP_NUM_THREADS)
timeout_s=20
cd "$root"
common=(recipes/tiny_sft.yaml model.path="$dir/base" peft.method=none train.max_steps=12 train.batch_size=2
        parallel.dp=2 parallel.zero=3 parallel.timeout_s=$timeout_s checkpoint.every=1 checkpoint.keep=3
        checkpoint.resume=auto)
layouts=("parallel.tp=2" "parallel.pp=2")

# The uninterrupted run of each layout.
for i in 0 1; do
  "${mpi[@]}" -np 4 "$forge" train "${common[@]}" ${layouts[$i]} output.dir="$dir/ref$i" > "$dir/ref$i.log" 2>&1 ||
    { tail "$dir/ref$i.log"; fail "reference run $i"; }
done

rank_pid() {  # rank_pid OUTPUT_DIR RANK: the pid of that rank's process, once it runs
  for p in $(pids_of "^output.dir=$1\$"); do
    if grep -qzx "OMPI_COMM_WORLD_RANK=$2" /proc/$p/environ 2>/dev/null; then echo "$p"; return; fi
  done
}

unkilled=0
for t in $(seq 1 "$trials"); do
  i=$((t % 2))
  out="$dir/trial$t"
  victim=$(((RANDOM >> 5) % 4))  # (the low bits of bash's RANDOM repeat)
  set +e
  if [ $((t % 2)) = 1 ]; then  # from outside, once the run is at a random point
    # After step K's checkpoint appears (K = 0: once the rank runs, in start-up) and a random
    # moment more: inside the next step or its checkpoint write. Progress, not time, so a loaded
    # machine does not let the run finish first.
    after=$(((RANDOM >> 5) % 10))
    delay=$("$py" -c "print(round(0.03 * $RANDOM / 32767, 3))")  # a step takes about 10-50 ms
    how="killed ${delay}s after $([ $after = 0 ] && echo "it started" || echo "step $after's checkpoint")"
    "${mpi[@]}" -np 4 "$forge" train "${common[@]}" ${layouts[$i]} output.dir="$out" > "$out.log" 2>&1 &
    job=$!
    pid=""
    while kill -0 $job 2>/dev/null; do
      [ -z "$pid" ] && pid=$(rank_pid "$out" $victim)
      if [ -n "$pid" ] && { [ $after = 0 ] || [ -f "$out/checkpoints/rank_00000/$(printf 'step_%08d.h5' $after)" ]; }; then
        sleep "$delay"
        kill -9 "$pid" 2>/dev/null
        break
      fi
      sleep 0.01
    done
    killed_at=$(date +%s.%N)
    wait $job
    code=$?
  else  # halfway through writing a checkpoint
    step=$((1 + (RANDOM >> 5) % 11))
    how="died writing step $step's checkpoint"
    args=()
    for r in 0 1 2 3; do
      [ $r -gt 0 ] && args+=(:)
      args+=(-np 1)
      [ $r = $victim ] && args+=(-x FORGE_TEST_CRASH_IN_CHECKPOINT=$step)
      args+=("$forge" train "${common[@]}" ${layouts[$i]} output.dir="$out")
    done
    killed_at=$(date +%s.%N)
    "${mpi[@]}" "${args[@]}" > "$out.log" 2>&1
    code=$?
  fi
  ended=$(date +%s.%N)
  set -e
  if [ $code = 0 ]; then
    echo "trial $t (${layouts[$i]}, rank $victim): finished before the kill; counted as a plain run"
    unkilled=$((unkilled + 1))
  else
    grep -Eq "process rank $victim .*(signal 9|Killed)" "$out.log" ||
      fail "trial $t: no message naming rank $victim: $(tail -5 "$out.log")"
    if [ $((t % 2)) = 1 ]; then
      wait_s=$("$py" -c "print(round($ended - $killed_at, 1))")
      "$py" -c "import sys; sys.exit(0 if $wait_s <= $timeout_s + 5 else 1)" ||
        fail "trial $t: the job took ${wait_s}s to end after rank $victim died"
      how="$how, job ended ${wait_s}s later"
    fi
  fi
  "${mpi[@]}" -np 4 "$forge" train "${common[@]}" ${layouts[$i]} output.dir="$out" > "$out.2.log" 2>&1 ||
    { tail "$out.2.log"; fail "trial $t: the relaunch failed"; }
  from=$(grep -o "resuming from [^ ]*" "$out.2.log" | head -1 | sed 's/.*step_0*//; s/\.h5//' || true)
  cmp -s "$dir/ref$i/model/model.safetensors" "$out/model/model.safetensors" ||
    fail "trial $t: the resumed model differs from the uninterrupted run's"
  echo "trial $t (${layouts[$i]}, rank $victim $how): resumed from step ${from:-0 (none)}, model identical"
  rm -rf "$out"
done
[ $unkilled -le $((trials / 3)) ] || fail "$unkilled of $trials jobs finished before their kill: nothing was tested"
echo "kill soak: $trials trials ($unkilled finished before the kill), every job ended and resumed to the uninterrupted model"
