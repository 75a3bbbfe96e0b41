#pragma once
// One connected instance: what the parts of the client library share. Service (the public
// API) owns it; the sender, the receiver, deliveries and loans work on it.
//
//   DaemonLink     registration, the routing after reloads, reconnection to a new daemon
//   RoutingCache   the routing a sender needs, reloaded when the daemon's generation moves
//   SendLanes      the lanes threads send, release and reject on
//   PendingReplies requests awaiting replies
//   HeldDeliveries deliveries the application took out of their handlers
//   Sender         the send path (send, try_send, replies, loans)
//   Receiver       the receive loops (commands, replies) and the handler threads
#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "daemon_link.hpp"
#include "exobus/service.hpp"
#include "exobus/shm/data_plane.hpp"
#include "handlers.hpp"
#include "held_deliveries.hpp"
#include "pending_replies.hpp"
#include "receiver.hpp"
#include "routing_cache.hpp"
#include "send_lanes.hpp"
#include "sender.hpp"

namespace exobus::client {

class ServiceCore {
 public:
  // Registers with the bus's daemon, then attaches.
  static Result<std::unique_ptr<ServiceCore>> connect(ServiceOptions options);
  // Maps the memory the link's registration grants, loads the routing and starts the reply
  // thread (requests can be made before start()).
  static Result<std::unique_ptr<ServiceCore>> attach(ServiceOptions options, std::unique_ptr<DaemonLink> daemon);
  ServiceCore(const ServiceCore&) = delete;
  ServiceCore& operator=(const ServiceCore&) = delete;

  // Starts the receiving thread and the handler threads; nothing if no handler is registered.
  void start();
  // Stops every thread, releases what no handler took, and leaves the bus for good.
  void stop();

  std::uint32_t instance() const { return daemon->registration().instance; }
  // Where this instance is among its type's: replies to what it sends come to its reply
  // channel of that number.
  std::uint32_t member() const { return daemon->registration().member; }
  // Its counters, heartbeat and attached flag, in its type's memory.
  shm::InstanceRecord& record() const { return plane->tenant().instance(member()); }
  // The service type's own configuration in the current routing.
  const ServiceTypeConfig& own_type() const { return routing.current().own_type(); }

  ServiceOptions options;
  std::unique_ptr<DaemonLink> daemon;
  std::unique_ptr<shm::BusMemory> memory;
  std::unique_ptr<shm::DataPlane> plane;
  RoutingCache routing;
  SendLanes lanes;
  PendingReplies pending;
  NameMap<Handlers> handlers;  // registered before start(), read-only after
  HeldDeliveries held_deliveries;
  // Commands taken and not yet settled outside the receiving thread's handler: queued for
  // a handler thread, or moved out of a handler. The lease table of a lane is sized for the
  // largest prefetch of any type, so the type's own prefetch is kept here. Incremented by
  // the receiving thread, or by a handler moving its delivery out; settling decrements
  // (release, pairs with the receiving thread's acquire).
  std::atomic<std::uint32_t> held{0};
  std::atomic<bool> running{false};
  // Stopped for good: its lanes may belong to another instance by now.
  std::atomic<bool> detached{false};
  Sender sender{*this};
  Receiver receiver{*this};

 private:
  ServiceCore(ServiceOptions options, std::unique_ptr<DaemonLink> daemon);
  std::vector<std::thread> threads_;
};

}  // namespace exobus::client
