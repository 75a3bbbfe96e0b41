#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace exobus::cli {

// Adds `exobus top [--once] [--interval SECONDS] [--bus NAME] [--runtime-dir DIR]`: the bus
// refreshed every interval (default 1 s) on the terminal until `q` (or Ctrl-C): per service
// type its send and delivery rates, queue depth, in flight, acked, redelivered, dead-lettered
// and refused (by sender); per instance its pid, state and rates; the message buffers per
// size class. --once prints one frame (two status requests an interval apart, for the rates)
// and exits, for a pipe or a script. Exit codes:
//   0  quit, or the frame printed;
//   1  the daemon did not answer (not running, permission denied, ...: the error on stderr);
//   2  not a terminal without --once.
void add_top_command(CLI::App& app, std::function<int()>& run);

}  // namespace exobus::cli
