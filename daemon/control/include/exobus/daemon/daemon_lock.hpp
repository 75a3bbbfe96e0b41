#pragma once
// One exobusd per bus: an exclusive flock() on <dir>/<bus>.lock, held for the daemon's life.
//
// The kernel drops the lock when the holder dies, even by kill -9, so a stale lock never
// blocks a restart. The file holds the holder's pid only so that a refused second daemon can
// name it; the flock, not the file's content or existence, is the truth.

#include <filesystem>

#include "exobus/error.hpp"
#include "exobus/control/runtime_paths.hpp"
#include "exobus/control/unique_fd.hpp"

namespace exobus::daemon {

class DaemonLock {
 public:
  // Refuses (refused) when another process holds the lock, naming its pid.
  static Result<DaemonLock> acquire(const control::RuntimePaths& paths);

  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  DaemonLock(control::UniqueFd fd, std::filesystem::path path) : fd_(std::move(fd)), path_(std::move(path)) {}
  control::UniqueFd fd_;  // the open file description that owns the flock
  std::filesystem::path path_;
};

}  // namespace exobus::daemon
