#include "exobus/control/runtime_paths.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "exobus/control/unique_fd.hpp"
#include "exobus/control/accounts.hpp"
#include "exobus/control/system_error.hpp"

namespace exobus::control {

namespace {

using Code = ErrorCode;

}  // namespace

Result<void> validate_bus_name(std::string_view bus) {
  bool valid = !bus.empty() && bus.size() <= kMaxBusNameLength;
  for (const char c : bus) {
    valid =
        valid && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-');
  }
  if (!valid) {
    return Error{ErrorCode::config_error, "invalid bus name '" + std::string(bus.substr(0, 80)) + "': use 1.." +
                                              std::to_string(kMaxBusNameLength) +
                                              " characters of A-Z, a-z, 0-9, '_' and '-'"};
  }
  return {};
}

Result<RuntimeDir> runtime_dir_from_environment() {
  const char* configured = std::getenv(kRuntimeDirEnvironmentVariable);
  if (configured != nullptr && configured[0] != '\0') {
    std::filesystem::path dir(configured);
    if (!dir.is_absolute()) {
      return Error{ErrorCode::config_error,
                   std::string(kRuntimeDirEnvironmentVariable) + "='" + configured + "' is not an absolute path"};
    }
    return RuntimeDir{dir.lexically_normal(), false};
  }
  return RuntimeDir{std::filesystem::path("/tmp/exobus-" + std::to_string(geteuid())), true};
}

Result<RuntimePaths> runtime_paths(std::string_view bus, const RuntimeDir& dir) {
  if (auto valid = validate_bus_name(bus); !valid) return valid.error();
  RuntimePaths paths{std::string(bus), dir, dir.path / (std::string(bus) + ".sock"),
                     dir.path / (std::string(bus) + ".lock"), dir.path / (std::string(bus) + ".bridge")};
  // sun_path holds the path and its terminating NUL.
  if (paths.socket.native().size() >= sizeof(sockaddr_un{}.sun_path)) {
    return Error{ErrorCode::config_error, "control socket path " + paths.socket.native() + " is " +
                                              std::to_string(paths.socket.native().size()) +
                                              " bytes, longer than a Unix socket allows (" +
                                              std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + "); set " +
                                              kRuntimeDirEnvironmentVariable + " to a shorter directory"};
  }
  return paths;
}

Result<RuntimePaths> runtime_paths(std::string_view bus) {
  Result<RuntimeDir> dir = runtime_dir_from_environment();
  if (!dir) return dir.error();
  return runtime_paths(bus, dir.value());
}

}  // namespace exobus::control
