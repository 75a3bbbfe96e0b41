#pragma once
// ExoBus-only workloads, run after the transport comparison through the client library and a
// real exobusd (docs/benchmarks.md, "ExoBus scenarios"):
//
// - fan-out: one sender sends a burst of 64-byte messages to 1, then 4, receiving service
//   types (one instance each, each its own process). The queues and the pool hold the whole
//   burst, so the sender never waits for a receiver: its rate is its own cost. Reported: the
//   sender's msg/s (wall clock) and CPU time per message, and 4 types / 1 type.
// - competing: one sender streams to one service type with two instances (two processes on
//   the consumer CPU) that share its queue. Reported: messages per second through both
//   together, and each instance's share; every message must be delivered exactly once.
// - idle: a service attached with a handler and nothing to do, for a fixed time. Reported:
//   the CPU time (utime + stime from /proc/<pid>/stat) it used, per wait mode, and the
//   daemon's over the same window.

#include <chrono>
#include <string>
#include <vector>

#include "process_pair.hpp"

namespace exobus::bench {

struct ScenarioParams {
  int reps = 7;
  std::size_t burst = 50'000;                    // fan-out: messages per burst
  std::chrono::duration<double> duration{1.0};   // competing: how long the sender streams
  std::chrono::duration<double> idle{10.0};      // idle: measuring window
  std::chrono::milliseconds timeout{60'000};
  Pinning pinning;
};

struct ScenarioResults {
  std::string markdown;                  // "## ExoBus scenarios" section
  std::vector<std::string> summary_csv;  // lines for summary.csv (same columns)
  std::vector<std::string> failures;
};

ScenarioResults run_exobus_scenarios(const ScenarioParams& params);

}  // namespace exobus::bench
