#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace exobus::cli {

// Adds `exobus send NAME [PAYLOAD] [--as SERVICE] [--wait-replies SECONDS] [--bus NAME]
// [--runtime-dir DIR]`: connects to the bus as a new instance of SERVICE (default
// $EXOBUS_SERVICE), sends message NAME (which must be in SERVICE's `sends`) with PAYLOAD
// (JSON text; none when omitted) and leaves. With --wait-replies it stays that many seconds
// and prints every reply as it arrives, one line each: "<outcome> <payload>". Exit codes:
//   0  sent (and, with --wait-replies, at least one reply arrived);
//   1  not sent, or no reply came in time (the typed error on stderr, e.g.
//      "exobus: send: schema_violation: ...").
void add_send_command(CLI::App& app, std::function<int()>& run);

}  // namespace exobus::cli
