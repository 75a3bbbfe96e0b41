#pragma once
// The send path, from a name and a payload to a message in the queue of every receiving
// type: route (the sender's `sends`), check (JSON, the name's schemas), identify (id and
// requestId), encode straight into a chunk of the link to the first target (and copy it
// into each other target's link), publish to every target at once or to none.
#include <chrono>
#include <cstddef>
#include <future>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "exobus/envelope.hpp"
#include "exobus/loan.hpp"
#include "exobus/received.hpp"
#include "exobus/reply.hpp"
#include "exobus/send_options.hpp"
#include "exobus/shm/data_plane.hpp"
#include "pending_replies.hpp"
#include "routing_cache.hpp"

namespace exobus::client {

class ServiceCore;

// One message to send, made by one of the named constructors below.
struct Outgoing {
  std::string_view name;  // the sender's own name for it
  std::string_view payload;
  SendOptions options;  // version and request; a new request unless it names one
  // A reply: the command it answers, and the requester it goes to: its type (an index in
  // the bus's memory) and its place among that type's instances.
  const Received* replying_to = nullptr;
  std::uint16_t reply_type = 0;
  std::uint16_t reply_member = 0;
  // Replies are awaited: registered before the command leaves, cancelled if it does not.
  std::optional<PendingReply> awaiting;
  // Wait up to send_timeout for room in a full queue (else fail at once).
  bool wait_for_room = true;

  static Outgoing command(std::string_view name, std::string_view payload, const SendOptions& options) {
    Outgoing outgoing;
    outgoing.name = name;
    outgoing.payload = payload;
    outgoing.options = options;
    return outgoing;
  }
  static Outgoing command_without_waiting(std::string_view name, std::string_view payload, const SendOptions& options) {
    Outgoing outgoing = command(name, payload, options);
    outgoing.wait_for_room = false;
    return outgoing;
  }
  static Outgoing request(std::string_view name, std::string_view payload, const SendOptions& options,
                          PendingReply awaiting) {
    Outgoing outgoing = command(name, payload, options);
    outgoing.awaiting = std::move(awaiting);
    return outgoing;
  }
  static Outgoing reply(const Received& command, std::uint16_t reply_type, std::uint16_t reply_member,
                        std::string_view outcome, std::string_view payload, const SendOptions& options) {
    Outgoing outgoing = Outgoing::command(outcome, payload, options);
    outgoing.replying_to = &command;
    outgoing.reply_type = reply_type;
    outgoing.reply_member = reply_member;
    return outgoing;
  }
};

// When a send that waits for room gives up. The clock is read only once the send has to
// wait, so a send that finds room at once reads no clock.
class SendDeadline {
 public:
  explicit SendDeadline(std::chrono::milliseconds budget) : budget_(budget) {}
  bool passed() {
    const auto now = std::chrono::steady_clock::now();
    if (!started_) {
      at_ = now + budget_;
      started_ = true;
    }
    return now >= at_;
  }

 private:
  std::chrono::milliseconds budget_;
  bool started_ = false;
  std::chrono::steady_clock::time_point at_{};
};

class Sender {
 public:
  explicit Sender(ServiceCore& core) : core_(core) {}

  Result<void> send(Outgoing message);
  // A command whose first reply (or a timeout error) the future gets.
  std::future<Result<Reply>> request(std::string_view name, std::string_view payload, std::chrono::milliseconds timeout,
                                     const SendOptions& options);
  // The one-reply case waited for on the calling thread, which takes the replies meanwhile.
  Result<Reply> call(std::string_view name, std::string_view payload, std::chrono::milliseconds timeout,
                     const SendOptions& options);
  Result<Loan> loan(std::string_view name, std::size_t payload_size, const SendOptions& options);
  Result<void> send_loan(Loan& loan);
  void abandon_loan(Loan& loan);

 private:
  // The route for `name`, after a reload of the routing if the daemon's moved on.
  Result<const SendRoute*> route_for(const Outgoing& outgoing);
  // Where the message goes: the route's receiving types, or the requester's reply channel.
  Result<std::span<const shm::Destination>> destinations_of(const SendRoute& route, const Outgoing& outgoing,
                                                            shm::Destination& reply) const;
  // Allocates a chunk of `size` bytes in each destination's link for the parts that have
  // none yet, copying `first`'s bytes into the new ones when `copy` is set; exhausted when a
  // link's pool is, with every chunk allocated kept.
  shm::PoolStatus allocate_parts(std::span<shm::Part> parts, std::size_t size, std::uint32_t copy_bytes);
  void abandon_parts(std::span<const shm::Part> parts);
  // Publishes `parts` (all allocated and written), waiting for room up to `deadline` when
  // asked; abandons them unless sent.
  shm::SendResult publish_parts(std::span<shm::Part> parts, bool wait_for_room,
                                SendDeadline& deadline);
  // The version the message carries: the one asked for, or the name's default.
  Result<const SendRoute::Version*> version_for(const SendRoute& route, const SendOptions& options) const;
  MessageView message_for(const SendRoute& route, double version, std::string_view payload,
                          const Outgoing& outgoing) const;
  Result<void> fits(const SendRoute& route, std::span<const shm::Destination> to, std::size_t size) const;
  // The envelope of a message sent now: where its replies go, and when it was sent (0
  // unless the daemon asks for send times).
  Envelope envelope() const;
  std::uint64_t send_time() const;
  // The error for a publish the bus refused.
  Error refusal(const shm::SendResult& sent, std::span<const shm::Part> parts, bool is_reply) const;
  Error exhausted(std::size_t size) const;

  ServiceCore& core_;
};

}  // namespace exobus::client
