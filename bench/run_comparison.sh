#!/usr/bin/env bash
# Measures every transport between two pinned processes and writes a report.
#
#   bench/run_comparison.sh [--quick] [--out DIR] [--no-build] [--binary PATH] [exobus_compare options]
#
# Builds exobus_compare (Release, in build-bench) unless told not to, runs it, and plots.
# Output: DIR/results.md (also printed), summary.csv, raw.csv, comparison.png.
# Default DIR: bench/results. Any other option goes to exobus_compare (see --help there).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$repo/bench/results"
build_dir="$repo/build-bench"
binary=""
build=1
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --binary) binary="$2"; build=0; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,8s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) args+=("$1"); shift ;;
  esac
done
[[ -n "$binary" ]] || binary="$build_dir/bench/compare/exobus_compare"

if [[ $build -eq 1 ]]; then
  if [[ ! -f "$build_dir/build.ninja" ]]; then
    cmake -S "$repo" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  cmake --build "$build_dir" --target exobus_compare -j2 >/dev/null
fi
[[ -x "$binary" ]] || { echo "run_comparison: no binary at $binary" >&2; exit 2; }

mkdir -p "$out"
status=0
"$binary" --out "$out" "${args[@]}" || status=$?

if command -v gnuplot >/dev/null 2>&1; then
  gnuplot -e "dir='$out'" "$repo/bench/compare/plot.gp" \
    && echo "run_comparison: plot in $out/comparison.png" >&2 \
    || echo "run_comparison: gnuplot failed; tables are still in $out" >&2
else
  echo "run_comparison: gnuplot not installed; skipping the plot" >&2
fi
exit $status
