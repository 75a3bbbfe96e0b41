#include "exobus/daemon/daemon_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <charconv>
#include <string>

#include "exobus/control/accounts.hpp"
#include "exobus/control/system_error.hpp"

namespace exobus::daemon {

using control::errno_error;
using control::retry_on_eintr;
using control::RuntimePaths;
using control::UniqueFd;

namespace {

using Code = ErrorCode;

// The pid the holder wrote, or a note why there is none (the holder may be between flock
// and write, or an older daemon may have left garbage).
std::string recorded_pid(int fd) {
  char buffer[32];
  const ssize_t n = retry_on_eintr([&] { return ::pread(fd, buffer, sizeof buffer - 1, 0); });
  if (n <= 0) return "pid not yet recorded";
  long pid = 0;
  const auto [ptr, error] = std::from_chars(buffer, buffer + n, pid);
  if (error != std::errc{} || ptr == buffer || pid <= 0) return "pid not yet recorded";
  return "pid " + std::to_string(pid);
}

}  // namespace

Result<DaemonLock> DaemonLock::acquire(const RuntimePaths& paths) {
  const std::string& path = paths.lock.native();
  UniqueFd fd(retry_on_eintr([&] { return ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644); }));
  if (!fd) return errno_error(Code::io, "cannot open the bus lock file " + path, errno);
  // flock locks belong to the open file description: a second open() of the same file, even in
  // this process, conflicts, and the kernel releases the lock when the last descriptor closes.
  if (retry_on_eintr([&] { return ::flock(fd.get(), LOCK_EX | LOCK_NB); }) == -1) {
    if (errno == EWOULDBLOCK) {
      return Error{Code::refused, "bus '" + paths.bus + "' is already served by exobusd (" + recorded_pid(fd.get()) +
                                      ", lock " + path + "); stop that daemon first or use another bus name"};
    }
    return errno_error(Code::io, "cannot lock " + path, errno);
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd.get(), 0) == -1) return errno_error(Code::io, "cannot truncate " + path, errno);
  const ssize_t written = retry_on_eintr([&] { return ::pwrite(fd.get(), pid.data(), pid.size(), 0); });
  if (written != static_cast<ssize_t>(pid.size())) {
    return errno_error(Code::io, "cannot write the daemon pid into " + path, written == -1 ? errno : EIO);
  }
  return DaemonLock(std::move(fd), paths.lock);
}

}  // namespace exobus::daemon
