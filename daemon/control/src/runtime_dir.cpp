#include "exobus/daemon/runtime_dir.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "exobus/control/accounts.hpp"
#include "exobus/control/runtime_paths.hpp"
#include "exobus/control/system_error.hpp"
#include "exobus/control/unique_fd.hpp"

namespace exobus::daemon {

namespace {

using control::describe_user;
using control::errno_error;
using control::kRuntimeDirEnvironmentVariable;
using control::retry_on_eintr;
using control::UniqueFd;
using Code = ErrorCode;

std::string octal(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

}  // namespace

Result<void> prepare_runtime_dir(const std::filesystem::path& dir, mode_t mode, std::optional<gid_t> group) {
  if ((mode & ~mode_t{07777}) != 0 || (mode & S_IWOTH) != 0 || (mode & S_IRWXU) != S_IRWXU) {
    return Error{Code::refused, "runtime directory mode " + octal(mode) +
                                    " is invalid: the owner needs rwx and the directory may not be "
                                    "world-writable (e.g. 0700, 0750, 0770)"};
  }
  // Created 0700 whatever the umask says (the umask only removes bits, 0700 survives unless the
  // umask denies the owner, which fchmod below repairs).
  if (::mkdir(dir.c_str(), 0700) == -1 && errno != EEXIST) {
    return errno_error(Code::io, "cannot create runtime directory " + dir.native(), errno);
  }
  // O_NOFOLLOW: a symbolic link planted in a shared /tmp must not redirect the daemon.
  UniqueFd fd(retry_on_eintr([&] { return ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC); }));
  if (!fd) {
    if (errno == ELOOP || errno == ENOTDIR) {
      return Error{Code::permission_denied,
                   "runtime directory " + dir.native() + " is a symbolic link or not a directory; refusing it"};
    }
    return errno_error(Code::io, "cannot open runtime directory " + dir.native(), errno);
  }
  struct stat info {};
  if (::fstat(fd.get(), &info) == -1) {
    return errno_error(Code::io, "cannot stat runtime directory " + dir.native(), errno);
  }
  if (info.st_uid != geteuid()) {
    return Error{Code::permission_denied, "runtime directory " + dir.native() + " is owned by " +
                                              describe_user(info.st_uid) + ", not by " + describe_user(geteuid()) +
                                              "; refusing it (set " + kRuntimeDirEnvironmentVariable +
                                              " to a directory of yours)"};
  }
  if ((info.st_mode & S_IWOTH) != 0 && (info.st_mode & S_ISVTX) == 0) {
    return Error{Code::permission_denied, "runtime directory " + dir.native() + " is world-writable (mode " +
                                              octal(info.st_mode) +
                                              ") without the sticky bit; anyone could replace the "
                                              "control socket. Remove it or chmod o-w it"};
  }
  // A sticky directory (EXOBUS_RUNTIME_DIR=/tmp by a root daemon, say) is shared with other
  // programs: its mode and group are not ours to change. Our own directory takes the
  // configured ones (group first: chown may clear mode bits), so a change applies at the
  // next start.
  if ((info.st_mode & S_ISVTX) != 0) return {};
  if (group && info.st_gid != *group && ::fchown(fd.get(), static_cast<uid_t>(-1), *group) == -1) {
    return errno_error(Code::io,
                       "cannot give runtime directory " + dir.native() + " to group " + std::to_string(*group), errno);
  }
  if ((info.st_mode & 07777) != mode && ::fchmod(fd.get(), mode) == -1) {
    return errno_error(Code::io, "cannot chmod runtime directory " + dir.native() + " to " + octal(mode), errno);
  }
  return {};
}

}  // namespace exobus::daemon
