#pragma once
// The options every subcommand that talks to a running bus shares:
//   --bus NAME         default $EXOBUS_BUS
//   --runtime-dir DIR  default $EXOBUS_RUNTIME_DIR, else /tmp/exobus-<uid>

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "exobus/control/runtime_paths.hpp"

namespace exobus::cli {

struct BusOptions {
  std::string bus;
  std::string runtime_dir;
};

// Registers --bus and --runtime-dir on `command`. The returned object is filled in by the
// parser and shared with the subcommand's callback.
std::shared_ptr<BusOptions> add_bus_options(CLI::App& command);

// The control socket of the bus named by `options`. Fails when no bus is named or the
// runtime directory is not absolute.
Result<control::RuntimePaths> resolve_paths(const BusOptions& options);

// Prints "exobus: <what>: <message>" on stderr, the one-line form of every failure.
void print_error(std::string_view what, std::string_view message);

}  // namespace exobus::cli
