#pragma once
// An instance's link to whoever plays the daemon of its bus: it made the instance (the
// registration and its memory), it is asked for the routing after a reload, it is watched
// for a restart, and closing it is how the instance leaves. Only the control plane goes
// through it, never a message, so a virtual call here costs nothing on the data path.
//
// Two kinds: the control socket to exobusd (socket_daemon_link.hpp), and the test bus,
// which plays the daemon inside the test's process (exobus/test_bus.hpp).
#include "exobus/control/registration.hpp"
#include "exobus/error.hpp"
#include "granted_memory.hpp"

namespace exobus::client {

// The routing now, and the memory granted with it (what a reload added among it).
struct RoutingUpdate {
  control::RoutingReply reply;
  GrantedMemory memory;
};

class DaemonLink {
 public:
  virtual ~DaemonLink() = default;
  virtual const control::RegistrationReply& registration() const = 0;
  // The memory the registration granted; handed over once.
  virtual GrantedMemory take_memory() = 0;
  // The routing now (after a reload, say).
  virtual Result<RoutingUpdate> fetch_routing() = 0;
  // Called now and then by the reply thread; reconnects to a daemon that restarted.
  virtual void watch() = 0;
  // Leaves the bus: the instance's slot is freed once the daemon sees it gone.
  virtual void close() = 0;
};

}  // namespace exobus::client
