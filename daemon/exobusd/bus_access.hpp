#pragma once
// Who may reach a bus, from the `bus` section of application.yml: the group that owns the
// data segment, the control socket and the runtime directory, and the mode of each.
//
// One rule for all three: the members of the group may run service instances exactly when
// segment-mode gives the group read and write. Then the socket is group rw (connect needs
// write) and the directory group x (to reach the socket); otherwise both stay the owner's.
// Which service types each of them may run is then the daemon's policy (allowed-users,
// allowed-groups), checked against the peer's credentials at registration.
#include <sys/types.h>

#include <optional>

#include "exobus/config.hpp"

namespace exobus::daemon {

struct BusAccess {
  std::optional<gid_t> group;  // none: the daemon's own group
  mode_t segment_mode;
  mode_t socket_mode;
  mode_t runtime_dir_mode;
};

// ErrorCode::config_error if bus.group names no group of this host.
Result<BusAccess> bus_access(const BusConfig& bus);

}  // namespace exobus::daemon
