#pragma once
// The receive loops: the receiving thread takes commands from every link to its service
// type and from the type's retry ring, and runs their handlers (inline, or through handler
// threads); the reply thread takes replies from the instance's reply channel of every link
// to its type, runs the awaiting requests' handlers, and does the instance's housekeeping
// (heartbeat, reply timeouts, the routing, the daemon link).
//
// Every message is checked before a handler sees it: it came by a link whose sender may
// send that name to this type, it names that sender, a reply answers a request this
// instance sent to that sender's type, and (validate-received) the payload is valid. One
// that fails is counted against its sender (exobus status), acknowledged and dropped.
//
// A caller waiting in Service::call takes the replies itself meanwhile (the reply turn
// below): a reply then reaches it with no hand-off between threads, which on two cores was
// most of a round trip (the reply thread asleep, woken by futex, then handing over).
//
// An idle loop spins, then yields, then sleeps on the futexes of all its sources at once
// (WaitMode). A source that is corrupt, or that wakes the loop again and again with nothing
// to take (a hostile sender bumping its signal), is left out of the sleep for a while and
// polled instead, so no peer can keep a receiver busy.
#include <concurrentqueue/blockingconcurrentqueue.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "exobus/delivery.hpp"
#include "exobus/reply.hpp"
#include "delivery_trace.hpp"
#include "exobus/shm/data_plane.hpp"

namespace exobus::client {

class FirstReply;
class ServiceCore;
struct RoutingState;

class Receiver {
 public:
  explicit Receiver(ServiceCore& core) : core_(core) {}

  // Before any run_*(): the lanes the two loops take on.
  void use_lanes(std::uint16_t command_lane, std::uint16_t reply_lane);
  void run_commands();  // the receiving thread, until the service stops
  void run_replies();   // the reply thread, until the service stops
  void run_handlers();  // a handler thread, until the service stops
  // Takes the instance's replies on the calling thread until `first` is ready (Service::call);
  // the reply thread steps aside meanwhile. Spins as the service's WaitMode says, then leaves
  // the replies to the reply thread and sleeps until `first` is ready.
  void take_replies_until(FirstReply& first);
  // Whether this thread holds the reply turn: it runs a reply handler of this service, and a
  // wait for a reply here would wait for itself.
  bool in_reply_handler() const;
  // After the threads stopped: every request still awaiting replies gets its timed-out call.
  void abandon_replies();
  // Wakes the sleeping loops (the service is stopping).
  void wake();
  // After the threads stopped: deliveries queued for handler threads that none took.
  void release_unhandled();

 private:
  // What the checks and the handler lookup concluded for a command's name, version and
  // sender (an index in the bus's memory) under one routing state. A source keeps the
  // last one, since a stream repeats them: the next command then costs one comparison
  // instead of four table lookups. Handlers never change once the service started.
  struct Verdict {
    std::uint64_t serial = 0;  // of the routing state it was found in (0: none yet)
    std::uint16_t sender = 0;
    double version = 0;
    std::string name;  // public, as messages carry it
    bool may_deliver = false;  // the sender may send it, and this type receives it
    std::string_view internal_name;  // this type's name for it (into the routing state)
    const Handler* handler = nullptr;
  };
  // One queue a loop takes from: a channel of a link, or (link null) the retry ring.
  struct Source {
    shm::Link* link = nullptr;
    shm::Channel* channel = nullptr;
    std::uint32_t quiet_until_ms = 0;  // left out of sleeps, polled, until then (0: never)
    std::uint32_t spurious_wakes = 0;  // in a row, with nothing to take
    Verdict last_command;
  };
  struct Loop {
    bool replies;
    shm::LaneCursor cursor;
    std::vector<Source> sources;
    std::uint64_t generation = ~std::uint64_t{0};  // of the routing the sources were built from
    std::size_t next = 0;                          // round robin over the sources
    std::uint32_t idle_rounds = 0;
  };
  // One pass over a loop's sources, up to the first message taken and handled; `blocked`:
  // the prefetch or the lease table is full, handlers must catch up first. Only the loop's
  // own thread (`owns_loop`) rebuilds its sources after a reload, so that a sleep of its
  // never finds them gone; a caller taking replies meanwhile finds nothing.
  enum class Round { took, nothing, blocked };
  Round take_round(Loop& loop, bool owns_loop);
  // The reply thread while callers take the replies: housekeeping, and naps.
  void step_aside();
  void build_sources(Loop& loop, const RoutingState& state);
  bool looks_empty(const Loop& loop, const Source& source) const;
  shm::TakeOutcome take(Loop& loop, Source& source, std::uint32_t now);
  void idle(Loop& loop);
  void sleep(Loop& loop, std::chrono::milliseconds timeout);
  void housekeeping();
  void handle_command(Source& source, const shm::Delivery& taken);
  const Verdict& verdict_for(Verdict& last, const RoutingState& state, std::uint16_t sender, std::string_view name,
                             double version) const;
  void handle_reply(const shm::Delivery& taken);
  // Counts a message that failed the checks against its link and drops it.
  void refuse(const shm::Delivery& taken, shm::RefusalReason reason);
  // `handler` is the one registered for the delivery's name and version (handlers do not
  // change once started, so a found handler stays valid). A delivery the handler left in
  // place unsettled is acked, or released if it threw; one it moved out is the holder's.
  void run_handler(Delivery& delivery, const Handler& handler);

  ServiceCore& core_;
  Loop commands_{false, {}, {}};
  Loop replies_{true, {}, {}};
  // A process-local futex word in every sleep: wake() bumps it.
  std::atomic<std::uint32_t> stopping_{0};
  // The receiving thread's delivery, begun again for each message whose handler runs on
  // that thread, so the strings of its Received keep their capacity and nothing is moved
  // or allocated per message. A handler that moves it out leaves it empty; settled (or
  // empty) after every handler, it never releases anything when it goes.
  Delivery inline_delivery_;
  // The reply turn: whoever takes replies, runs their handlers or does the housekeeping
  // holds it, the reply thread or a caller in take_replies_until. It guards replies_ (but
  // its idle_rounds, the reply thread's), inbox_reply_, the reply lane, and what
  // PendingReplies leaves to "the reply thread". A caller only try-locks it; the reply
  // thread never sleeps holding it.
  std::mutex reply_turn_;
  // Callers in take_replies_until; while not 0 the reply thread naps on this word (a futex)
  // instead of taking replies. Process-local, as is everything here but the sources.
  std::atomic<std::uint32_t> reply_takers_{0};
  Reply inbox_reply_;                  // likewise for replies, by the holder of the reply turn
  std::uint32_t housekeeping_ms_ = 0;  // the reply thread's last heartbeat and checks
  // A delivery for a handler thread, with the handler found for it.
  struct Work {
    std::unique_ptr<Delivery> delivery;
    const Handler* handler = nullptr;
  };
  moodycamel::BlockingConcurrentQueue<Work> work_;
  // Written while a tail watches: commands by the receiving thread, replies by the holder
  // of the reply turn.
  DeliveryTrace trace_;
};

}  // namespace exobus::client
