#include "exobus/daemon/peer_credentials.hpp"

#include <fcntl.h>
#include <sys/socket.h>

#include <charconv>
#include <string>

#include "exobus/control/unique_fd.hpp"
#include "exobus/control/accounts.hpp"
#include "exobus/control/system_error.hpp"

namespace exobus::daemon {

using control::account_groups;
using control::errno_error;
using control::retry_on_eintr;
using control::UniqueFd;

using Code = ErrorCode;

Result<PeerCredentials> read_peer_credentials(int socket_fd) {
  ucred credentials{};
  socklen_t length = sizeof credentials;
  if (::getsockopt(socket_fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == -1) {
    return errno_error(Code::io, "cannot read the peer's credentials (SO_PEERCRED)", errno);
  }
  return PeerCredentials{credentials.pid, credentials.uid, credentials.gid,
                         account_groups(credentials.uid, credentials.gid)};
}

Result<std::uint64_t> process_start_time(pid_t pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/stat";
  UniqueFd fd(retry_on_eintr([&] { return ::open(path.c_str(), O_RDONLY | O_CLOEXEC); }));
  if (!fd) return errno_error(Code::io, "cannot open " + path, errno);
  // One line well under 1 KiB plus a comm of at most 16 bytes; 4 KiB is ample.
  char buffer[4096];
  std::size_t size = 0;
  while (size < sizeof buffer) {
    const ssize_t n = retry_on_eintr([&] { return ::read(fd.get(), buffer + size, sizeof buffer - size); });
    if (n == -1) return errno_error(Code::io, "cannot read " + path, errno);
    if (n == 0) break;
    size += static_cast<std::size_t>(n);
  }
  const std::string_view stat(buffer, size);
  // Field 2 (comm) is in parentheses and may itself contain spaces and ')', so fields are
  // counted from the last ')'. After it come field 3 (state) onwards, separated by spaces.
  const std::size_t comm_end = stat.rfind(')');
  if (comm_end == std::string_view::npos) return Error{Code::io, "unexpected format of " + path};
  std::size_t position = comm_end + 1;
  for (int field = 3; field <= 22; ++field) {
    while (position < stat.size() && stat[position] == ' ') ++position;
    const std::size_t end = std::min(stat.find(' ', position), stat.size());
    // A zombie (Z) or a process being reaped (X) has exited; its /proc entry lingers until
    // its parent waits for it, but it will never run again.
    if (field == 3 && (stat.substr(position, end - position) == "Z" || stat.substr(position, end - position) == "X")) {
      return Error{Code::io, "process " + std::to_string(pid) + " has exited"};
    }
    if (field == 22) {
      std::uint64_t start_time = 0;
      const auto [ptr, error] = std::from_chars(stat.data() + position, stat.data() + end, start_time);
      if (error != std::errc{} || ptr != stat.data() + end || end == position) break;
      return start_time;
    }
    position = end;
  }
  return Error{Code::io, "cannot find the start time (field 22) in " + path};
}

}  // namespace exobus::daemon
