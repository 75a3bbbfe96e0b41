// Google Benchmark's main, except that a benchmark that reported an error fails the run
// (the ctest smoke run relies on it).
#include <benchmark/benchmark.h>

#include "bench_support.hpp"

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return exobus::shm::bench::any_failure().load() ? 1 : 0;
}
