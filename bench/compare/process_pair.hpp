#pragma once
// Runs the two sides of one measurement in two forked processes, each pinned to its own CPU,
// released together by a start barrier, and watched by a deadline.

#include <limits.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <type_traits>

#include "transport.hpp"

namespace exobus::bench {

// Which CPU each side runs on; -1 when the machine gives us fewer than two.
struct Pinning {
  int producer_cpu = -1;
  int consumer_cpu = -1;
  std::string describe() const;
};

// The first two CPUs this process may run on.
Pinning choose_pinning();

// What a side reports back through its pipe. Plain bytes: written with one write() below
// PIPE_BUF, so it arrives whole or not at all.
struct SideReport {
  bool ok = false;
  char error[256] = {};
  // One-way receiver: messages seen and the time from the first to the last.
  std::uint64_t messages = 0;
  double seconds = 0;
  std::uint64_t checksum = 0;
  // Round-trip client: percentiles of the per-sample latencies, in nanoseconds.
  std::uint64_t samples = 0;
  double p50_ns = 0, p99_ns = 0, p999_ns = 0, min_ns = 0, max_ns = 0;
};
static_assert(std::is_trivially_copyable_v<SideReport>);
static_assert(sizeof(SideReport) <= PIPE_BUF);

// Opens its side, calls `start()` (which returns once both sides are open), runs, and fills
// the report. Throwing is a failure of the run; the message lands in SideReport::error.
using SideMain = std::function<void(Transport&, const std::function<void()>& start, SideReport&)>;

struct PairResult {
  bool ok = false;
  std::string error;
  SideReport producer;
  SideReport consumer;
};

// Calls transport.prepare(spec), forks the consumer and the producer, waits for both (killing
// both if either fails or the deadline passes) and calls transport.cleanup().
PairResult run_pair(Transport& transport, const ChannelSpec& spec, const Pinning& pinning,
                    const SideMain& producer, const SideMain& consumer,
                    std::chrono::milliseconds deadline);

}  // namespace exobus::bench
