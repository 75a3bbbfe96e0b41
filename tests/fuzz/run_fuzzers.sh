#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for the given number of seconds
# (default 600), two at a time. Each target starts from its committed seed corpus
# (tests/fuzz/corpus/<target>) and keeps what it finds in a scratch corpus beside the
# build; a crash leaves its input as crash-* in build-fuzz/fuzz-runs/<target>/.
#
#   tests/fuzz/run_fuzzers.sh [seconds] [target...]
#
# Environment: BUILD_DIR (default <repo>/build-fuzz), JOBS (parallel fuzzers, default 2).
set -euo pipefail

seconds=${1:-600}
[ $# -gt 0 ] && shift
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-$repo/build-fuzz}
jobs=${JOBS:-2}
targets=${*:-decode config schema payload memory handles}

if [ ! -f "$build/build.ninja" ]; then
  CC=clang CXX=clang++ cmake -S "$repo" -B "$build" -G Ninja -DEXOBUS_FUZZ=ON
fi
set --
for target in $targets; do set -- "$@" "fuzz_$target"; done
ninja -C "$build" "$@"

runs=$build/fuzz-runs
mkdir -p "$runs"
status=0
run_one() {
  target=$1
  dir=$runs/$target
  mkdir -p "$dir/corpus"
  # -timeout: one input may not take more than 10 s (a hang is a finding too).
  (cd "$dir" && "$build/tests/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 "$dir/corpus" "$repo/tests/fuzz/corpus/$target" >"$dir/log" 2>&1)
}

running=0
for target in $targets; do
  run_one "$target" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true

for target in $targets; do
  log=$runs/$target/log
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  crashes=$(ls "$runs/$target" | grep -c -E '^(crash|leak|timeout|oom)-' || true)
  echo "fuzz_$target: ${execs:-?} executions in ${seconds}s, findings: $crashes (log: $log)"
  [ "$crashes" -eq 0 ] || status=1
done
exit $status
