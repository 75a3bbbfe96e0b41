#pragma once
// A message being handled. Its lease holds the message for this instance until it is
// settled, once: ack (done), release (redeliver now, maybe to another instance), reject
// (dead-letter). renew() extends the lease for long work.
//
// A handler settles in place, or by returning (ack) or throwing (release); or it keeps the
// delivery to settle later, from any thread, by moving it out:
//
//   service->on("user.create", [&](exobus::Delivery& delivery) {
//     pending.push(std::move(delivery));     // the handler returns; nothing is settled
//   });
//   ...  // later, on a database callback:
//   held.reply("user.create.ok", row);       // part of the command's request
//   held.ack();
//
// The lease keeps running meanwhile (renew() it past ack-timeout-ms), the delivery counts
// against the type's prefetch, and its payload stays readable until it is settled. A
// delivery destroyed unsettled is released; one still held when its Service stops is
// released by the stop, and every call on it then fails with closed. A Delivery is one
// object like any other: one thread at a time.
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <string_view>

#include "exobus/error.hpp"
#include "exobus/received.hpp"
#include "exobus/reply.hpp"
#include "exobus/send_options.hpp"

namespace exobus {

namespace client {
class ServiceCore;
class Receiver;
class HeldDeliveries;
}  // namespace client

class Delivery {
 public:
  Delivery(Delivery&& other) noexcept;
  Delivery& operator=(Delivery&& other) noexcept;
  Delivery(const Delivery&) = delete;
  Delivery& operator=(const Delivery&) = delete;
  // Releases the delivery if it is still unsettled.
  ~Delivery();

  const Received& message() const { return message_; }
  // The payload where it lies in shared memory, with no copy. Valid until the delivery is
  // settled, or its lease expires (then it may be redelivered, acknowledged elsewhere and
  // its memory reused): copy what must outlive that.
  std::string_view payload() const { return payload_; }
  // Asked after reading payload(): whether every byte read was this message's. False only
  // when the lease was lost meanwhile (the process stopped or ran past ack-timeout-ms) and
  // the memory reused; the message was redelivered, so drop what was read. (message() is
  // checked by the library before the handler runs.)
  bool payload_intact() const;

  // Replies to this command with an outcome (a name in the replier's `sends` and the
  // requester's `receives`); may be called any number of times for a streaming reply.
  Result<void> reply(std::string_view outcome, std::string_view payload = {}, const SendOptions& options = {});
  // Sends on behalf of this message: part of its request unless options name another.
  Result<void> send(std::string_view name, std::string_view payload = {}, const SendOptions& options = {});
  Result<void> send(std::string_view name, std::string_view payload, ReplyHandler on_reply,
                    std::chrono::milliseconds timeout, const SendOptions& options = {});
  std::future<Result<Reply>> request(std::string_view name, std::string_view payload, std::chrono::milliseconds timeout,
                                     const SendOptions& options = {});
  Result<Reply> call(std::string_view name, std::string_view payload, std::chrono::milliseconds timeout,
                     const SendOptions& options = {});  // Service::call, as part of this request

  // Where this command's replies go (as reply() sends them), for a relay that replies from
  // elsewhere; closed once the delivery is no longer this object's.
  Result<ReplyAddress> reply_address() const;

  Result<void> ack();
  Result<void> release();
  Result<void> reject();
  Result<void> renew();
  bool settled() const { return settled_; }

 private:
  friend class client::Receiver;
  friend class client::HeldDeliveries;
  enum class Settlement : std::uint8_t;
  Delivery() = default;  // empty and settled, to be begun (the receiving thread's own)
  // Makes this (settled or empty) delivery the unsettled one of a new message; message_ is
  // filled by the caller.
  void begin(client::ServiceCore& core, std::uint64_t lease, std::uint64_t chunk, std::uint16_t reply_member,
             std::string_view payload, std::uint64_t taken_at_ns) {
    core_ = &core;
    lease_ = lease;
    chunk_ = chunk;
    reply_member_ = reply_member;
    payload_ = payload;
    taken_at_ns_ = taken_at_ns;
    settled_ = false;
    held_ = false;
    in_prefetch_ = false;
  }
  Delivery(client::ServiceCore& core, std::uint64_t lease, std::uint64_t chunk, std::uint16_t reply_member,
           Received message, std::string_view payload, std::uint64_t taken_at_ns)
      : core_(&core),
        lease_(lease),
        chunk_(chunk),
        reply_member_(reply_member),
        message_(std::move(message)),
        payload_(payload),
        taken_at_ns_(taken_at_ns),
        settled_(false),
        in_prefetch_(true) {}
  Result<void> settle(Settlement how);
  // Adds the time from the take to now to the instance's handler-time histogram.
  void count_handler_time() const;
  SendOptions on_behalf(const SendOptions& options) const;
  // Leaves the delivery settled and unowned: after its service released it at stop.
  void detach() noexcept;
  // This delivery becomes what `other` was; `other` is left empty.
  void take(Delivery& other) noexcept;

  client::ServiceCore* core_ = nullptr;  // null once moved from, or its service stopped
  std::uint64_t lease_ = 0;              // shm::LeaseToken::word()
  std::uint64_t chunk_ = 0;              // the message's handle in shared memory (its link: the sender)
  std::uint16_t reply_member_ = 0;       // the requester's place among its type's instances
  Received message_;
  std::string_view payload_;
  // When it was taken (envelope_clock_ns), for the handler-time histogram; 0 when unobserved
  // (its sender did not stamp it).
  std::uint64_t taken_at_ns_ = 0;
  bool settled_ = true;
  // Taken out of its handler: the service tracks it until it is settled, to release it at
  // stop. A delivery in its handler is the receiver's to settle.
  bool held_ = false;
  // Counted in the service's prefetch (ServiceCore::held): one for a handler thread, or
  // moved out of its handler; the receiving thread's own is not, while in its handler.
  bool in_prefetch_ = false;
};

// Handles one delivery; see Delivery for how it settles.
using Handler = std::function<void(Delivery&)>;

}  // namespace exobus
