#pragma once
// Who is at the other end of a Unix socket, as the kernel saw it at connect() time.

#include <sys/types.h>

#include <cstdint>
#include <vector>

#include "exobus/error.hpp"

namespace exobus::daemon {

struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  // The groups of the peer's account in the group database (getgrouplist), including gid.
  // This is the set a login of that user gets, not necessarily the process's current set.
  std::vector<gid_t> groups;
};

// SO_PEERCRED of a connected Unix socket plus the account's groups. A uid without a passwd
// entry has just its gid.
Result<PeerCredentials> read_peer_credentials(int socket_fd);

// Start time of a process in clock ticks after boot (/proc/<pid>/stat field 22). Together
// with the pid it names one process for the life of the system, across pid reuse. An error
// for a process that has exited, even while its zombie is not yet reaped.
Result<std::uint64_t> process_start_time(pid_t pid);

}  // namespace exobus::daemon
