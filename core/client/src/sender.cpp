#include "sender.hpp"

#include <chrono>
#include <thread>

#include "exobus/message_name.hpp"
#include "exobus/message_version.hpp"
#include "exobus/payload.hpp"
#include "service_core.hpp"

namespace exobus::client {

namespace {

Error stopped_error() { return Error{ErrorCode::closed, "the service was stopped; connect again to send"}; }

Result<void> check_payload_of(const SendRoute::Version& version, std::string_view payload) {
  // A schema checks that the payload is JSON as it validates it.
  if (version.schemas.empty()) return check_payload(payload);
  for (const Schema& schema : version.schemas) {
    if (Result<void> valid = schema.validate(payload); !valid) return valid.error();
  }
  return {};
}

}  // namespace

Result<const SendRoute*> Sender::route_for(const Outgoing& outgoing) {
  if (core_.detached.load(std::memory_order_relaxed)) return stopped_error();
  const std::uint64_t generation = core_.segment->header().routing_generation.load(std::memory_order_acquire);
  if (Result<void> refreshed = core_.routing.refresh(generation, *core_.daemon); !refreshed) return refreshed.error();
  return outgoing.replying_to != nullptr ? core_.routing.reply_route(outgoing.name, outgoing.replying_to->sender)
                                         : core_.routing.command_route(outgoing.name);
}

Result<const SendRoute::Version*> Sender::version_for(const SendRoute& route, const SendOptions& options) const {
  const double version = options.version().value_or(route.default_version);
  if (const SendRoute::Version* known = route.find(version)) return known;
  if (!is_valid_version(version)) {
    return Error{ErrorCode::invalid_version, "version " + version_text(version) + " of " +
                                                 quote_name(route.public_name) +
                                                 " is not a finite number of at least 0"};
  }
  std::string known;
  for (const SendRoute::Version& each : route.versions)
    known += (known.empty() ? "" : ", ") + version_text(each.version);
  const ServiceTypeConfig& own = core_.own_type();
  return Error{ErrorCode::unknown_version, "service '" + own.name + "' sends version " + version_text(version) +
                                               " of " + quote_name(route.public_name) +
                                               ", which its configuration does not list (known: " + known +
                                               "); add it under versions in " + own.config_file.string()};
}

MessageView Sender::message_for(const SendRoute& route, double version, std::string_view payload,
                                const Outgoing& outgoing) const {
  MessageView message;
  message.name = route.public_name;
  message.version = version;
  message.payload = payload;
  message.id = Uuid::generate();
  message.request_id = outgoing.options.request_id().value_or(message.id);
  if (outgoing.replying_to != nullptr) message.response_to = outgoing.replying_to->id;
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
  const Result<const SendRoute*> found = route_for(outgoing);
  if (!found) return found.error();
  const SendRoute& route = *found.value();
  const Result<const SendRoute::Version*> version = version_for(route, outgoing.options);
  if (!version) return version.error();
  if (Result<void> valid = check_payload_of(*version.value(), outgoing.payload); !valid) return valid;

  // Encoded straight from these views into the chunk: no copy of name or payload.
  const MessageView message = message_for(route, version.value()->version, outgoing.payload, outgoing);
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
      // A full queue is retried only while no receiving type has the message: after a
      // partial fan-out a retry would deliver it twice to the types that have it.
      const bool retry = (allocation.status == shm::PoolStatus::exhausted ||
                          (sent.status == shm::SendStatus::queue_full && sent.delivered_targets == 0)) &&
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

std::future<Result<Reply>> Sender::request(std::string_view name, std::string_view payload,
                                           std::chrono::milliseconds timeout, const SendOptions& options) {
  auto promise = std::make_shared<std::promise<Result<Reply>>>();
  std::future<Result<Reply>> future = promise->get_future();
  const std::string what(name);
  const auto first_reply = [promise, what, timeout](const Reply& reply) {
    if (reply.timed_out) {
      promise->set_value(
          Error{ErrorCode::timeout, "no reply to '" + what + "' within " + std::to_string(timeout.count()) + " ms"});
    } else {
      promise->set_value(reply);
    }
    return ReplyControl::done;
  };
  Result<void> sent =
      send(Outgoing::request(name, payload, options, {first_reply, std::chrono::steady_clock::now() + timeout}));
  if (!sent) promise->set_value(sent.error());
  return future;
}

Error Sender::refusal(const shm::SendResult& sent, std::size_t size, bool is_reply) const {
  if (sent.status == shm::SendStatus::pool_exhausted) {
    return Error{ErrorCode::pool_exhausted, "no free message buffer of " + std::to_string(size) +
                                                " bytes on the bus; raise the size class counts in the configuration "
                                                "or let receivers catch up"};
  }
  if (sent.status == shm::SendStatus::queue_full) {
    std::string target = "a receiving service type";
    if (is_reply) {
      target = "the requester's reply inbox";
    } else if (const std::string type = core_.routing.current().type_of_ring(sent.failed_ring); !type.empty()) {
      target = "service type '" + type + "'";
    }
    const std::string full = "queue for " + target + " is full (" +
                             std::to_string(core_.plane->ring(sent.failed_ring).capacity()) +
                             " messages); raise queue-capacity in the configuration or add instances";
    if (sent.delivered_targets > 0) {
      return Error{ErrorCode::partially_delivered,
                   std::to_string(sent.delivered_targets) + " receiving types have the message, but the " + full};
    }
    return Error{ErrorCode::queue_full, full};
  }
  return Error{ErrorCode::corrupted, "the bus refused the message (status " +
                                         std::to_string(static_cast<int>(sent.status)) +
                                         "); the segment may be damaged"};
}

Result<Loan> Sender::loan(std::string_view name, std::size_t payload_size, const SendOptions& options) {
  const Outgoing outgoing = Outgoing::command(name, {}, options);
  const Result<const SendRoute*> found = route_for(outgoing);
  if (!found) return found.error();
  const SendRoute& route = *found.value();
  const Result<const SendRoute::Version*> version = version_for(route, options);
  if (!version) return version.error();
  const MessageView message = message_for(route, version.value()->version, std::string_view(), outgoing);
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
  made.version_route_ = version.value();
  made.payload_ =
      std::span<char>(reinterpret_cast<char*>(allocation.buffer.data()) + encoded.value() - payload_size, payload_size);
  return made;
}

Result<void> Sender::send_loan(Loan& loan) {
  const auto& route = *static_cast<const SendRoute*>(loan.route_);
  const auto& version = *static_cast<const SendRoute::Version*>(loan.version_route_);
  const shm::MessageHandle handle = shm::MessageHandle::from_word(loan.chunk_);
  loan.core_ = nullptr;  // spent, whatever happens below
  Result<void> valid = core_.detached.load(std::memory_order_relaxed)
                           ? Result<void>(stopped_error())
                           : check_payload_of(version, std::string_view(loan.payload_.data(), loan.payload_.size()));
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
