#!/usr/bin/env bash
# Sets up, builds and runs the ExoBus test suite: the TSan build (in-process tests), the
# ASan+UBSan build, then the regular build, whose ctest summary closes the output.
# Labels not run here: slow (too long for CI). Run a group alone with: ctest --test-dir build -L crash
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

jobs=$(nproc)
build() { # build DIR [cmake args...]
  local dir=$1; shift
  cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
}
run_suite() { # run_suite DIR [ctest args...]
  local dir=$1; shift
  ctest --test-dir "$dir" --output-on-failure -j "$jobs" -LE slow "$@"
}

build build-tsan -DEXOBUS_SANITIZE=thread
run_suite build-tsan
build build-asan -DEXOBUS_SANITIZE=address
run_suite build-asan
build build
run_suite build
