#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace exobus::cli {

// Adds `exobus tail`: a live trace of the bus, one line per delivery (trace_line.hpp), in
// time order across instances, until SIGINT or SIGTERM (or --count lines):
//   --type T       only deliveries to service type T (repeatable; default: every type the
//                  user may run)
//   --name N       only messages named N (public, or the receiver's name for it)
//   --request ID   only messages of end-user request ID: one request through every service
//   --payload      with the head of each payload
//   --json         one JSON object per line
//   --count N      stop after N lines
// (with --bus NAME and --runtime-dir DIR). Once attached it says on stderr which types it
// traces ("exobus tail: tracing 2 service types: users mail"). The daemon grants the tail read-only access to
// the trace rings of the types the user may run (their policy: allowed-users,
// allowed-groups; the owner and root), and the instances write them only while a tail is
// attached. The trace is lossy: a tail that falls behind prints "... dropped N lines"
// ({"dropped": N}) and never slows the bus; a tail whose lease ran out (stopped for
// seconds, or the daemon restarted) attaches again and says on stderr that lines are
// missing. Exit codes: 0 stopped, 1 the daemon refused or is not running (the error on
// stderr), 2 usage.
void add_tail_command(CLI::App& app, std::function<int()>& run);

}  // namespace exobus::cli
