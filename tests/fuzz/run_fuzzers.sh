#!/usr/bin/env bash
# Runs the libFuzzer harnesses of a FORGE_FUZZ build (`make fuzz`) for SECONDS each, two at a time:
# first over the regression corpus (tests/fuzz/corpus/NAME: seeds and every input that once failed),
# then fuzzing from it. New inputs go to BUILD/fuzz_corpus/NAME, failures to BUILD/fuzz_findings/.
# Prints executions, corpus size and findings per harness; exits 1 when any harness found something.
# usage: run_fuzzers.sh BUILD SECONDS [NAME ...]
set -u
build=$(cd "$1" && pwd); secs=$2; shift 2
src=$(cd "$(dirname "$0")" && pwd)
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for b in "$build"/tests/fuzz/fuzz_*; do names+=("$(basename "$b" | sed 's/^fuzz_//')"); done
fi
mkdir -p "$build/fuzz_logs" "$build/fuzz_findings"

# The dictionary each input format gets.
dict_of() {
  case $1 in
    jinja_template) echo "$src/dict/jinja.dict" ;;
    http_head) echo "$src/dict/http.dict" ;;
    recipe) echo "$src/dict/recipe.dict" ;;
    tokenizer_text|checkpoint|token_cache|llama2c) echo "" ;;
    *) echo "$src/dict/json.dict" ;;
  esac
}

run_one() {
  local name=$1 bin="$build/tests/fuzz/fuzz_$1" log="$build/fuzz_logs/$1.log"
  local work="$build/fuzz_corpus/$name" dict; dict=$(dict_of "$name")
  mkdir -p "$work"
  # Hostile sizes must be refused before they are allocated: a malloc over 1 GiB is a finding.
  UBSAN_OPTIONS=print_stacktrace=1 "$bin" -max_total_time="$secs" -timeout=1 -rss_limit_mb=2560 -malloc_limit_mb=1024 -print_final_stats=1 \
    -artifact_prefix="$build/fuzz_findings/$name-" ${dict:+-dict="$dict"} "$work" "$src/corpus/$name" >"$log" 2>&1
  echo $? >"$log.rc"
}
export -f run_one dict_of
export build secs src
printf '%s\n' "${names[@]}" | xargs -P 2 -I{} bash -c 'run_one {}'

failed=0
printf '%-16s %12s %8s %7s  %s\n' harness executions corpus rss_mb result | tee "$build/fuzz_logs/summary.txt"
for name in "${names[@]}"; do
  log="$build/fuzz_logs/$name.log"
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  rss=$(grep -o 'stat::peak_rss_mb: *[0-9]*' "$log" | tail -1 | awk '{print $2}')
  corpus=$(ls "$build/fuzz_corpus/$name" | wc -l)
  result=ok
  if [ "$(cat "$log.rc")" != 0 ]; then
    result="FAILED: $(grep -m1 -E 'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)|runtime error|==ERROR|Assertion|terminate called|deadly signal' "$log" | cut -c1-120) (see $log)"
    failed=1
  fi
  printf '%-16s %12s %8s %7s  %s\n' "$name" "${execs:-?}" "$corpus" "${rss:-?}" "$result" | tee -a "$build/fuzz_logs/summary.txt"
done
exit $failed
