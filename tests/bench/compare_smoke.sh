#!/usr/bin/env bash
# Runs the transport comparison with tiny counts and checks that every transport produced a
# figure for every workload, in the printed table and in summary.csv, and that the ExoBus
# scenarios (fan-out, competing instances, idle CPU) produced theirs.
#   compare_smoke.sh <run_comparison.sh> <exobus_compare> <output dir>
set -uo pipefail
script="$1" binary="$2" out="$3"
transports=(floor unix zeromq exobus-busy exobus-adaptive exobus-sleep exobus-shm)
payloads=(64 1024 65536)

rm -rf "$out"
if ! "$script" --binary "$binary" --out "$out" --quick --duration 0.02 --samples 500 \
    --warmup 50 --burst 2000 --idle 0.2 >"$out.stdout" 2>"$out.stderr"; then
  echo "FAIL: run_comparison exited with an error"; cat "$out.stderr" "$out.stdout"; exit 1
fi

fail=0
for t in "${transports[@]}"; do
  for p in "${payloads[@]}"; do
    if ! grep -Eq "^stream,$p,$t,msgs_per_s,[0-9.e+]+," "$out/summary.csv"; then
      echo "FAIL: no one-way figure for $t at $p B in summary.csv"; fail=1
    fi
  done
  if ! grep -Eq "^round_trip,64,$t,p50_us,[0-9.e+]+," "$out/summary.csv"; then
    echo "FAIL: no round-trip figure for $t in summary.csv"; fail=1
  fi
  # One row per payload plus one round-trip row, each starting with a number, none "failed".
  rows=$(grep -Ec "^\| ([0-9]+ (B|KiB) \| )?$t \| [0-9]" "$out.stdout")
  if [[ "$rows" -ne $(( ${#payloads[@]} + 1 )) ]]; then
    echo "FAIL: expected $(( ${#payloads[@]} + 1 )) table rows for $t, found $rows"; fail=1
  fi
done
for figure in "exobus_fanout,64,exobus-1-types,sender_msgs_per_s" \
              "exobus_fanout,64,exobus-4-types,sender_msgs_per_s" \
              "exobus_competing,64,exobus-2-instances,msgs_per_s" \
              "exobus_idle,0,exobus-adaptive,cpu_ms" "exobus_idle,0,exobus-sleep,cpu_ms"; do
  if ! grep -Eq "^$figure,[0-9.e+]+," "$out/summary.csv"; then
    echo "FAIL: no figure $figure in summary.csv"; fail=1
  fi
done
if grep -q "failed" "$out.stdout"; then
  echo "FAIL: the table reports failed runs"; fail=1
fi
if [[ $fail -ne 0 ]]; then cat "$out.stdout"; exit 1; fi
echo "OK: ${#transports[@]} transports, ${#payloads[@]} payloads and a round trip each, and the ExoBus scenarios"
