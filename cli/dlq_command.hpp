#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace exobus::cli {

// Adds the dead-letter queue commands, answered by the daemon:
//   exobus dlq list --type T [--json]  one line per dead letter of service type T:
//                                      id, name, version ("?" when the daemon does not
//                                      say), sender, payload
//   exobus dlq requeue --type T        moves T's dead letters back into its queue
// (both with --bus NAME and --runtime-dir DIR). The daemon answers only a user that T's
// policy lets run T (allowed-users, allowed-groups; the owner and root), permission_denied
// otherwise. Exit codes: 0 done, 1 the daemon refused or is not running (the error on stderr).
void add_dlq_command(CLI::App& app, std::function<int()>& run);

}  // namespace exobus::cli
