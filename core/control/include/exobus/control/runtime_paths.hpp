#pragma once
// Where a bus's control socket and daemon lock file live.
//
// Layout of a runtime directory (one per user by default, shared between buses):
//
//   <dir>/<bus>.sock   the control socket, SOCK_SEQPACKET, mode set by the daemon
//   <dir>/<bus>.lock   flock()ed by the running exobusd, holds its pid; never removed,
//                      because unlinking a lock file lets two daemons lock different inodes
//
// <dir> is $EXOBUS_RUNTIME_DIR when set, else /tmp/exobus-<euid>. Users who share a bus set
// EXOBUS_RUNTIME_DIR to the same directory; the daemon's owner creates it with a group mode.

#include <sys/types.h>

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "exobus/error.hpp"

namespace exobus::control {

inline constexpr std::size_t kMaxBusNameLength = 64;
inline constexpr const char* kRuntimeDirEnvironmentVariable = "EXOBUS_RUNTIME_DIR";

struct RuntimeDir {
  std::filesystem::path path;
  // True when the path is the per-user default /tmp/exobus-<euid> rather than one named by
  // EXOBUS_RUNTIME_DIR: then a client also insists that the directory is its own.
  bool per_user_default = false;
};

struct RuntimePaths {
  std::string bus;
  RuntimeDir dir;
  std::filesystem::path socket;
  std::filesystem::path lock;
  // Where exobus-bridge, when the bus has one, writes its status for `exobus status`.
  std::filesystem::path bridge_status;
};

// A bus name is 1..64 characters of [A-Za-z0-9_-]: it becomes a file name.
Result<void> validate_bus_name(std::string_view bus);

// $EXOBUS_RUNTIME_DIR (must be absolute) or /tmp/exobus-<euid>. Touches no file.
Result<RuntimeDir> runtime_dir_from_environment();

// Computes the paths of `bus` in `dir`. Touches no file. Refuses an invalid bus name and a
// socket path too long for sockaddr_un.
Result<RuntimePaths> runtime_paths(std::string_view bus, const RuntimeDir& dir);
// The same in runtime_dir_from_environment().
Result<RuntimePaths> runtime_paths(std::string_view bus);

}  // namespace exobus::control
