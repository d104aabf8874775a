#!/bin/bash
# A rank dies by SIGKILL at a random moment of a 4-rank job (dp2 x tp2 and dp2 x pp2, ZeRO-3),
# TRIALS times (issue 29). Odd trials kill a random rank from outside after a random delay (inside
# a step, a checkpoint write or start-up, wherever it lands); even trials make a random rank die
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
pids_of() {  # pids_of PATTERN: processes whose command line matches (no procps in a minimal Debian)
  local f
  for f in /proc/[0-9]*/cmdline; do
    { tr '\0' ' ' < "$f"; } 2>/dev/null | grep -Eq -- "$1" && { f=${f#/proc/}; echo "${f%/cmdline}"; }
  done
  return 0
}
trap 'for p in $(pids_of "output.dir=$dir/"); do kill -9 $p 2>/dev/null; done; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export OMP_NUM_THREADS=1
mpi=(mpirun --oversubscribe --allow-run-as-root -x OMP_NUM_THREADS)
timeout_s=20
cd "$root"
common=(recipes/tiny_sft.yaml model.path="$dir/base" peft.method=none train.max_steps=12 train.batch_size=2
        parallel.dp=2 parallel.zero=3 parallel.timeout_s=$timeout_s checkpoint.every=1 checkpoint.keep=3
        checkpoint.resume=auto)
layouts=("parallel.tp=2" "parallel.pp=2")

# The uninterrupted run of each layout, and how long it takes.
declare -A took
for i in 0 1; do
  start=$(date +%s.%N)
  "${mpi[@]}" -np 4 "$forge" train "${common[@]}" ${layouts[$i]} output.dir="$dir/ref$i" > "$dir/ref$i.log" 2>&1 ||
    { tail "$dir/ref$i.log"; fail "reference run $i"; }
  took[$i]=$("$py" -c "print($(date +%s.%N) - $start)")
done

rank_pid() {  # rank_pid OUTPUT_DIR RANK: the pid of that rank's process, once it runs
  for p in $(pids_of "forge train .*output.dir=$1( |$)"); do
    if { tr '\0' '\n' < /proc/$p/environ; } 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2"; then echo "$p"; return; fi
  done
}

unkilled=0
for t in $(seq 1 "$trials"); do
  i=$((t % 2))
  out="$dir/trial$t"
  victim=$((RANDOM % 4))
  set +e
  if [ $((t % 2)) = 1 ]; then  # from outside, after a random share of the run's time
    delay=$("$py" -c "print(round(${took[$i]} * (0.15 + 0.6 * $RANDOM / 32767), 2))")
    how="killed after ${delay}s"
    "${mpi[@]}" -np 4 "$forge" train "${common[@]}" ${layouts[$i]} output.dir="$out" > "$out.log" 2>&1 &
    job=$!
    sleep "$delay"
    pid=$(rank_pid "$out" $victim)
    [ -n "$pid" ] && kill -9 "$pid"
    killed_at=$(date +%s.%N)
    wait $job
    code=$?
  else  # halfway through writing a checkpoint
    step=$((1 + RANDOM % 11))
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
