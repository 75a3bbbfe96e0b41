#include "bus_options.hpp"

#include <iostream>

namespace exobus::cli {

std::shared_ptr<BusOptions> add_bus_options(CLI::App& command) {
  auto options = std::make_shared<BusOptions>();
  command.add_option("--bus", options->bus, "Bus name (default: $EXOBUS_BUS)")->envname("EXOBUS_BUS");
  command.add_option("--runtime-dir", options->runtime_dir,
                     "Directory of the bus's control socket (default: $EXOBUS_RUNTIME_DIR or /tmp/exobus-<uid>)");
  return options;
}

Result<control::RuntimePaths> resolve_paths(const BusOptions& options) {
  if (options.bus.empty()) {
    return Error{ErrorCode::refused, "no bus named; pass --bus NAME or set $EXOBUS_BUS"};
  }
  if (options.runtime_dir.empty()) return control::runtime_paths(options.bus);
  const std::filesystem::path dir(options.runtime_dir);
  if (!dir.is_absolute()) {
    return Error{ErrorCode::refused, "--runtime-dir must be an absolute path, not '" + options.runtime_dir + "'"};
  }
  // An explicitly named directory is trusted as the daemon's, like $EXOBUS_RUNTIME_DIR.
  return control::runtime_paths(options.bus, control::RuntimeDir{dir, false});
}

void print_error(std::string_view what, std::string_view message) {
  std::cerr << "exobus: " << what << ": " << message << '\n';
}

}  // namespace exobus::cli
