#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace exobus::cli {

// Adds `exobus send NAME [PAYLOAD] [--as SERVICE] [--version V] [--request-id UUID]
// [--wait-replies SECONDS] [--bus NAME] [--runtime-dir DIR]`: connects to the bus as a new
// instance of SERVICE (default $EXOBUS_SERVICE), sends message NAME (which must be in
// SERVICE's `sends`) with PAYLOAD (JSON text; none when omitted) and leaves. --version gives
// the message's version (one SERVICE's configuration lists for NAME; default its default
// version), --request-id the request it belongs to (default: a new one). With
// --wait-replies it stays that many seconds and prints every reply as it arrives, one line
// each: "<outcome> version=<V> request=<UUID> <payload>" (an outcome named "timeout" is a
// reply like any other; the end of the wait is never printed as one). Exit codes:
//   0  sent (and, with --wait-replies, at least one reply arrived);
//   1  not sent, or no reply came in time (the typed error on stderr, e.g.
//      "exobus: send: unknown_version: ..." or "exobus: send: timeout: ...");
//   2  the command line is wrong, a malformed --version or --request-id included.
void add_send_command(CLI::App& app, std::function<int()>& run);

}  // namespace exobus::cli
