#!/usr/bin/env bash
# Sets up, builds and runs the ExoBus test suite: the TSan build (in-process tests), the
# ASan+UBSan build, a bounded run of every libFuzzer target, then the regular build, whose
# ctest summary closes the output.
# Labels not run here: slow (too long for CI). Run a group alone with: ctest --test-dir build -L crash
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

jobs=$(nproc)
configure() { # configure DIR [cmake args...]
  local dir=$1; shift
  cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
}
run_suite() { # run_suite DIR [ctest args...]
  local dir=$1; shift
  ctest --test-dir "$dir" --output-on-failure -j "$jobs" -LE slow "$@"
}

# TSan: only the in-process tests (it does not follow memory shared between processes).
configure build-tsan -DEXOBUS_SANITIZE=thread
cmake --build build-tsan -j "$jobs" --target tsan_tests
run_suite build-tsan -L tsan
configure build-asan -DEXOBUS_SANITIZE=address
cmake --build build-asan -j "$jobs"
run_suite build-asan
# libFuzzer (clang, ASan+UBSan): every fuzz target runs a bounded time from its seed corpus.
CC=clang CXX=clang++ configure build-fuzz -DEXOBUS_FUZZ=ON
cmake --build build-fuzz -j "$jobs" --target fuzzers
run_suite build-fuzz -R '^fuzz_run_'
configure build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$jobs"
run_suite build
