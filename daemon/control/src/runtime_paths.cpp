#include "exobus/control/runtime_paths.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "exobus/control/unique_fd.hpp"
#include "posix.hpp"

namespace exobus::control {

namespace {

using Code = ControlError::Code;

std::string octal(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

}  // namespace

Result<void> validate_bus_name(std::string_view bus) {
  bool valid = !bus.empty() && bus.size() <= kMaxBusNameLength;
  for (const char c : bus) {
    valid = valid && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                      c == '-');
  }
  if (!valid) {
    return ControlError{Code::refused, "invalid bus name '" + std::string(bus.substr(0, 80)) + "': use 1.." +
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
      return ControlError{Code::refused, std::string(kRuntimeDirEnvironmentVariable) + "='" + configured +
                                             "' is not an absolute path"};
    }
    return RuntimeDir{dir.lexically_normal(), false};
  }
  return RuntimeDir{std::filesystem::path("/tmp/exobus-" + std::to_string(geteuid())), true};
}

Result<RuntimePaths> runtime_paths(std::string_view bus, const RuntimeDir& dir) {
  if (auto valid = validate_bus_name(bus); !valid) return valid.error();
  RuntimePaths paths{std::string(bus), dir, dir.path / (std::string(bus) + ".sock"),
                     dir.path / (std::string(bus) + ".lock")};
  // sun_path holds the path and its terminating NUL.
  if (paths.socket.native().size() >= sizeof(sockaddr_un{}.sun_path)) {
    return ControlError{Code::refused, "control socket path " + paths.socket.native() + " is " +
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

Result<void> prepare_runtime_dir(const std::filesystem::path& dir, mode_t mode, std::optional<gid_t> group) {
  if ((mode & ~mode_t{07777}) != 0 || (mode & S_IWOTH) != 0 || (mode & S_IRWXU) != S_IRWXU) {
    return ControlError{Code::refused, "runtime directory mode " + octal(mode) +
                                           " is invalid: the owner needs rwx and the directory may not be "
                                           "world-writable (e.g. 0700, 0750, 0770)"};
  }
  // Created 0700 whatever the umask says (the umask only removes bits, 0700 survives unless the
  // umask denies the owner, which fchmod below repairs).
  if (::mkdir(dir.c_str(), 0700) == -1 && errno != EEXIST) {
    return detail::system_error(Code::io, "cannot create runtime directory " + dir.native(), errno);
  }
  // O_NOFOLLOW: a symbolic link planted in a shared /tmp must not redirect the daemon.
  UniqueFd fd(detail::retry_on_eintr(
      [&] { return ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC); }));
  if (!fd) {
    if (errno == ELOOP || errno == ENOTDIR) {
      return ControlError{Code::permission_denied,
                          "runtime directory " + dir.native() + " is a symbolic link or not a directory; refusing it"};
    }
    return detail::system_error(Code::io, "cannot open runtime directory " + dir.native(), errno);
  }
  struct stat info {};
  if (::fstat(fd.get(), &info) == -1) {
    return detail::system_error(Code::io, "cannot stat runtime directory " + dir.native(), errno);
  }
  if (info.st_uid != geteuid()) {
    return ControlError{Code::permission_denied, "runtime directory " + dir.native() + " is owned by " +
                                                     detail::describe_user(info.st_uid) + ", not by " +
                                                     detail::describe_user(geteuid()) + "; refusing it (set " +
                                                     kRuntimeDirEnvironmentVariable + " to a directory of yours)"};
  }
  if ((info.st_mode & S_IWOTH) != 0 && (info.st_mode & S_ISVTX) == 0) {
    return ControlError{Code::permission_denied, "runtime directory " + dir.native() + " is world-writable (mode " +
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
    return detail::system_error(Code::io, "cannot give runtime directory " + dir.native() + " to group " +
                                              std::to_string(*group), errno);
  }
  if ((info.st_mode & 07777) != mode && ::fchmod(fd.get(), mode) == -1) {
    return detail::system_error(Code::io, "cannot chmod runtime directory " + dir.native() + " to " + octal(mode),
                                errno);
  }
  return {};
}

}  // namespace exobus::control
