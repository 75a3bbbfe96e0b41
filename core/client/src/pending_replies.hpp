#pragma once
// Requests awaiting replies, by the id of the command sent. A sender adds its entry before
// the command leaves (a reply may come back before send() returns) and cancels it if the
// send fails. From then on only the holder of the reply turn (Receiver: the reply thread,
// or a caller taking its own reply) uses or erases the entry (find, finish, expire), so it
// may call the handler through the pointer find() gave without holding the lock: senders
// only insert, and an insert never moves existing entries.
#include <atomic>
#include <chrono>
#include <mutex>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "exobus/reply.hpp"
#include "exobus/uuid.hpp"

namespace exobus::client {

struct PendingReply {
  ReplyHandler handler;
  std::chrono::steady_clock::time_point deadline;
  // The types (indices in the bus's memory) the request went to: replies come from them.
  std::vector<std::uint16_t> responders;
};

class PendingReplies {
 public:
  void add(const Uuid& request, PendingReply pending);
  void cancel(const Uuid& request);
  // The holder of the reply turn only, below.
  struct Found {
    const ReplyHandler* handler = nullptr;  // null: not awaited, or not from `responder`
    bool awaited_from_others = false;       // awaited, but from types `responder` is not
  };
  // The handler of `request` for a reply from type `responder`.
  Found find(const Uuid& request, std::uint16_t responder);
  void finish(const Uuid& request);
  // Takes out every request past its deadline and calls its handler with a timed-out Reply.
  void expire(std::chrono::steady_clock::time_point now);
  // Without the lock: whether any request awaits a reply (the reply thread sleeps if none).
  bool empty() const { return count_.load(std::memory_order_relaxed) == 0; }

 private:
  void count() { count_.store(pending_.size(), std::memory_order_relaxed); }  // with the lock held

  std::mutex mutex_;
  std::unordered_map<Uuid, PendingReply> pending_;
  std::atomic<std::size_t> count_{0};
};

}  // namespace exobus::client
