#include "sender.hpp"

#include <chrono>
#include <thread>

#include "exobus/payload.hpp"
#include "service_core.hpp"

namespace exobus::client {

thread_local const Received* message_being_handled = nullptr;

namespace {

Error stopped_error() { return Error{ErrorCode::closed, "the service was stopped; connect again to send"}; }

Result<void> check_payload_of(const SendRoute& route, std::string_view payload) {
  // A schema checks that the payload is JSON as it validates it.
  if (route.schemas.empty()) return check_payload(payload);
  for (const Schema& schema : route.schemas) {
    if (Result<void> valid = schema.validate(payload); !valid) return valid.error();
  }
  return {};
}

}  // namespace

Result<const SendRoute*> Sender::route_for(std::string_view name, bool is_reply) {
  if (core_.detached.load(std::memory_order_relaxed)) return stopped_error();
  const std::uint64_t generation = core_.segment->header().routing_generation.load(std::memory_order_acquire);
  if (Result<void> refreshed = core_.routing.refresh(generation, core_.daemon); !refreshed) return refreshed.error();
  return core_.routing.route(name, is_reply);
}

MessageView Sender::message_for(const SendRoute& route, std::string_view payload, const Received* replying_to) const {
  MessageView message;
  message.name = route.public_name;
  message.payload = payload;
  message.id = Uuid::generate();
  const Received* context = replying_to != nullptr ? replying_to : message_being_handled;
  message.request_id = context != nullptr ? context->request_id : message.id;
  if (replying_to != nullptr) message.response_to = replying_to->id;
  message.sender = core_.options.service;
  return message;
}

Result<void> Sender::fits(const SendRoute& route, std::size_t size) const {
  if (size <= core_.plane->largest_payload()) return {};
  return Error{ErrorCode::payload_too_large, "message '" + route.public_name + "' needs " + std::to_string(size) +
                                                 " bytes; the largest size class holds " +
                                                 std::to_string(core_.plane->largest_payload()) +
                                                 "; raise bus.size-classes in the configuration"};
}

Envelope Sender::envelope() const { return {core_.inbox_ring(), static_cast<std::uint16_t>(core_.instance())}; }

Result<void> Sender::send(Outgoing outgoing) {
  const bool is_reply = outgoing.replying_to != nullptr;
  const Result<const SendRoute*> found = route_for(outgoing.name, is_reply);
  if (!found) return found.error();
  const SendRoute& route = *found.value();
  if (Result<void> valid = check_payload_of(route, outgoing.payload); !valid) return valid;

  // Encoded straight from these views into the chunk: no copy of name or payload.
  const MessageView message = message_for(route, outgoing.payload, outgoing.replying_to);
  const std::size_t size = enveloped_size(message);
  if (Result<void> fitting = fits(route, size); !fitting) return fitting;
  const std::span<const std::uint16_t> rings =
      is_reply ? std::span<const std::uint16_t>(&outgoing.reply_ring, 1) : std::span<const std::uint16_t>(route.rings);
  const bool awaiting = outgoing.awaiting.has_value();
  if (awaiting) core_.pending.add(message.id, std::move(*outgoing.awaiting));

  const auto deadline = std::chrono::steady_clock::now() + core_.options.send_timeout;
  shm::SendResult sent{shm::SendStatus::pool_exhausted};
  {
    const SendLanes::Held lane = core_.lanes.acquire();
    for (;;) {
      const shm::Allocation allocation = core_.plane->allocate(lane.cursor(), size);
      if (allocation.status == shm::PoolStatus::ok) {
        const Result<std::size_t> encoded = encode_enveloped(envelope(), message, allocation.buffer);
        if (!encoded) {
          core_.plane->abandon(lane.cursor(), allocation.handle);
          if (awaiting) core_.pending.cancel(message.id);
          return encoded.error();
        }
        sent =
            core_.plane->publish(lane.cursor(), allocation.handle, static_cast<std::uint32_t>(encoded.value()), rings);
      }
      const bool retry =
          (allocation.status == shm::PoolStatus::exhausted || sent.status == shm::SendStatus::queue_full) &&
          outgoing.wait_for_room && std::chrono::steady_clock::now() < deadline;
      if (!retry) break;
      std::this_thread::yield();
    }
  }
  if (sent.status == shm::SendStatus::ok) {
    core_.slot().sent.fetch_add(1, std::memory_order_relaxed);
    return {};
  }
  if (awaiting) core_.pending.cancel(message.id);
  return refusal(sent, size, is_reply);
}

Error Sender::refusal(const shm::SendResult& sent, std::size_t size, bool is_reply) const {
  if (sent.status == shm::SendStatus::pool_exhausted) {
    return Error{ErrorCode::queue_full, "no free message buffer of " + std::to_string(size) +
                                            " bytes on the bus; raise the size class counts in the configuration or "
                                            "let receivers catch up"};
  }
  if (sent.status == shm::SendStatus::queue_full) {
    std::string target = "a receiving service type";
    if (is_reply) {
      target = "the requester's reply inbox";
    } else if (const std::string type = core_.routing.current().type_of_ring(sent.failed_ring); !type.empty()) {
      target = "service type '" + type + "'";
    }
    return Error{ErrorCode::queue_full,
                 "queue for " + target + " is full (" + std::to_string(core_.plane->ring(sent.failed_ring).capacity()) +
                     " messages); raise queue-capacity in the configuration or add instances" +
                     (sent.delivered_targets > 0
                          ? " (" + std::to_string(sent.delivered_targets) + " other receiving types already have it)"
                          : "")};
  }
  return Error{ErrorCode::corrupted, "the bus refused the message (status " +
                                         std::to_string(static_cast<int>(sent.status)) +
                                         "); the segment may be damaged"};
}

Result<Loan> Sender::loan(std::string_view name, std::size_t payload_size) {
  const Result<const SendRoute*> found = route_for(name, false);
  if (!found) return found.error();
  const SendRoute& route = *found.value();
  const MessageView message = message_for(route, std::string_view(), nullptr);
  const std::size_t size = enveloped_size(message) + payload_size;
  if (Result<void> fitting = fits(route, size); !fitting) return fitting.error();
  const auto deadline = std::chrono::steady_clock::now() + core_.options.send_timeout;
  shm::Allocation allocation;
  Result<std::size_t> encoded = std::size_t{0};
  {
    const SendLanes::Held lane = core_.lanes.acquire();
    allocation = core_.plane->allocate(lane.cursor(), size);
    while (allocation.status == shm::PoolStatus::exhausted && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
      allocation = core_.plane->allocate(lane.cursor(), size);
    }
    if (allocation.status != shm::PoolStatus::ok) return refusal({shm::SendStatus::pool_exhausted}, size, false);
    encoded = encode_enveloped_around_payload(envelope(), message, payload_size, allocation.buffer);
    if (!encoded) {
      core_.plane->abandon(lane.cursor(), allocation.handle);
      return encoded.error();
    }
  }
  // The chunk is this instance's (the pool records the owner, not the lane), so the lane is
  // not held while the application writes: recovery frees the chunk if the process dies.
  Loan made;
  made.core_ = &core_;
  made.chunk_ = allocation.handle.word();
  made.length_ = static_cast<std::uint32_t>(encoded.value());
  made.route_ = &route;
  made.payload_ =
      std::span<char>(reinterpret_cast<char*>(allocation.buffer.data()) + encoded.value() - payload_size, payload_size);
  return made;
}

Result<void> Sender::send_loan(Loan& loan) {
  const auto& route = *static_cast<const SendRoute*>(loan.route_);
  const shm::MessageHandle handle = shm::MessageHandle::from_word(loan.chunk_);
  loan.core_ = nullptr;  // spent, whatever happens below
  Result<void> valid = core_.detached.load(std::memory_order_relaxed)
                           ? Result<void>(stopped_error())
                           : check_payload_of(route, std::string_view(loan.payload_.data(), loan.payload_.size()));
  if (!valid) {
    core_.plane->abandon(core_.instance(), handle);
    return valid;
  }
  // publish() frees the chunk when a queue is full, and the payload with it: wait for room
  // in every target queue first, as send() would have waited. (Another sender may still
  // take the room first; then the loan is refused with queue_full.)
  std::optional<std::chrono::steady_clock::time_point> deadline;  // read the clock only if a queue is full
  for (const std::uint16_t ring : route.rings) {
    const shm::ReadyRing queue = core_.plane->ring(ring);
    while (queue.looks_full()) {
      const auto now = std::chrono::steady_clock::now();
      if (!deadline) deadline = now + core_.options.send_timeout;
      if (now >= *deadline) break;
      std::this_thread::yield();
    }
  }
  shm::SendResult sent;
  {
    const SendLanes::Held lane = core_.lanes.acquire();
    sent = core_.plane->publish(lane.cursor(), handle, loan.length_, route.rings);
  }
  if (sent.status != shm::SendStatus::ok) return refusal(sent, loan.length_, false);
  core_.slot().sent.fetch_add(1, std::memory_order_relaxed);
  return {};
}

void Sender::abandon_loan(Loan& loan) {
  core_.plane->abandon(core_.instance(), shm::MessageHandle::from_word(loan.chunk_));
  loan.core_ = nullptr;
}

}  // namespace exobus::client
