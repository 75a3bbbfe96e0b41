#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace exobus::cli {

// Adds `exobus status [--json] [--bus NAME] [--runtime-dir DIR]`: the daemon's view of the
// bus, per service type (queue depth, in flight, delivered, acked, redelivered,
// dead-lettered) and per instance (slot, pid, connected, hung, counters), as an aligned
// table, or with --json the daemon's status document as it sent it. Exit codes:
//   0  the daemon answered;
//   1  it did not (not running, permission denied, ...: the error on stderr).
void add_status_command(CLI::App& app, std::function<int()>& run);

}  // namespace exobus::cli
