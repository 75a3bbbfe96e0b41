#pragma once
// An instance's link to whoever plays the daemon of its bus: it made the instance (the
// registration), it is asked for the routing after a reload, it is watched for a restart,
// and closing it is how the instance leaves. Only the control plane goes through it, never a
// message, so a virtual call here costs nothing on the data path.
//
// Two kinds: the control socket to exobusd (socket_daemon_link.hpp), and the test bus,
// which plays the daemon inside the test's process (exobus/test_bus.hpp).
#include <vector>

#include "exobus/control/registration.hpp"
#include "exobus/control/unique_fd.hpp"
#include "exobus/error.hpp"

namespace exobus::client {

class DaemonLink {
 public:
  virtual ~DaemonLink() = default;
  virtual const control::RegistrationReply& registration() const = 0;
  // The memory the registration granted, one descriptor per registration().memory entry;
  // handed over once.
  virtual std::vector<control::UniqueFd> take_memory() = 0;
  // The routing now (after a reload, say).
  virtual Result<control::RoutingReply> fetch_routing() const = 0;
  // Called now and then by the reply thread; reconnects to a daemon that restarted.
  virtual void watch() = 0;
  // Leaves the bus: the instance's slot is freed once the daemon sees it gone.
  virtual void close() = 0;
};

}  // namespace exobus::client
