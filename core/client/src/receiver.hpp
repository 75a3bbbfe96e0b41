#pragma once
// The receive loops: the receiving thread takes commands from the service type's queue and
// runs their handlers (inline, or through handler threads); the reply thread takes replies
// from the instance's inbox and runs the awaiting requests' handlers, and does the
// instance's housekeeping (heartbeat, reply timeouts, the daemon link).
//
// An idle loop spins, then yields, then sleeps on the ring's futex (WaitMode); an idle
// round costs two loads, no clock read.
#include <concurrentqueue/blockingconcurrentqueue.h>

#include <cstdint>
#include <memory>

#include "exobus/delivery.hpp"
#include "exobus/reply.hpp"
#include "exobus/shm/data_plane.hpp"

namespace exobus::client {

class ServiceCore;

class Receiver {
 public:
  explicit Receiver(ServiceCore& core) : core_(core) {}

  // Before any run_*(): the lanes the two loops take on.
  void use_lanes(std::uint16_t home_lane, std::uint16_t inbox_lane);
  void run_commands();  // the receiving thread, until the service stops
  void run_replies();   // the reply thread, until the service stops
  void run_handlers();  // a handler thread, until the service stops
  // After the threads stopped: deliveries queued for handler threads that none took.
  void release_unhandled();

 private:
  void receive_loop(std::uint16_t ring, shm::LaneCursor& cursor, bool inbox);
  void idle(shm::ReadyRing& ring, std::uint32_t& idle_rounds, bool inbox);
  void housekeeping();
  void handle_command(const shm::Delivery& taken);
  void handle_reply(const shm::Delivery& taken);
  // `handler` is the one registered for the delivery's name and version (handlers do not
  // change once started, so a found handler stays valid). A delivery the handler left in
  // place unsettled is acked, or released if it threw; one it moved out is the holder's.
  void run_handler(Delivery& delivery, const Handler& handler);

  ServiceCore& core_;
  shm::LaneCursor home_cursor_, inbox_cursor_;
  // The receiving thread's Received, handed to each inline delivery and taken back after
  // its handler, so its strings keep their capacity: no allocation per message when
  // handlers run on the receiving thread.
  Received inline_received_;
  Reply inbox_reply_;                  // likewise for replies, on the reply thread
  std::uint32_t housekeeping_ms_ = 0;  // the reply thread's last heartbeat and checks
  // A delivery for a handler thread, with the handler found for it.
  struct Work {
    std::unique_ptr<Delivery> delivery;
    const Handler* handler = nullptr;
  };
  moodycamel::BlockingConcurrentQueue<Work> work_;
};

}  // namespace exobus::client
