#include "sender.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "exobus/message_name.hpp"
#include "exobus/message_version.hpp"
#include "exobus/payload.hpp"
#include "first_reply.hpp"
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
  const std::uint64_t generation =
      core_.memory->directory().header().routing_generation.load(std::memory_order_acquire);
  if (Result<void> refreshed = core_.routing.refresh(generation, *core_.daemon, *core_.memory); !refreshed) {
    return refreshed.error();
  }
  if (outgoing.replying_to != nullptr) return core_.routing.reply_route(outgoing.name, outgoing.reply_type);
  // A thread's last command route: a stream of sends of one name finds it again with one
  // comparison instead of a hash lookup. Keyed by the routing state's serial (a state lives
  // as long as its service), so a reload or another service misses.
  struct LastRoute {
    std::uint64_t serial = 0;
    std::string name;
    const SendRoute* route = nullptr;
  };
  thread_local LastRoute last;
  const std::uint64_t serial = core_.routing.current().serial;
  if (last.serial == serial && last.name == outgoing.name) return last.route;
  Result<const SendRoute*> route = core_.routing.command_route(outgoing.name);
  if (route) last = {serial, std::string(outgoing.name), route.value()};
  return route;
}

Result<std::span<const shm::Destination>> Sender::destinations_of(const SendRoute& route, const Outgoing& outgoing,
                                                                  shm::Destination& reply) const {
  const RoutingState& state = core_.routing.current();
  if (outgoing.replying_to == nullptr && outgoing.options.only_to().empty()) {
    return std::span<const shm::Destination>(route.destinations);
  }
  if (outgoing.replying_to == nullptr) {
    for (const shm::Destination& each : route.destinations) {
      if (state.type_name(each.link->receiver()) == outgoing.options.only_to()) {
        return std::span<const shm::Destination>(&each, 1);
      }
    }
    return Error{ErrorCode::unknown_message, "service type '" + std::string(outgoing.options.only_to()) +
                                                 "' does not receive " + quote_name(route.public_name)};
  }
  shm::Link* link = outgoing.reply_type < state.link_to.size() ? state.link_to[outgoing.reply_type] : nullptr;
  if (link == nullptr || link->reply_channel(outgoing.reply_member) == nullptr) {
    return Error{ErrorCode::unknown_message, "no way back to the requester of '" + outgoing.replying_to->name +
                                                 "' (service type '" + std::string(state.type_name(outgoing.reply_type)) +
                                                 "', instance " + std::to_string(outgoing.reply_member) + ")"};
  }
  reply = {link, std::uint32_t{outgoing.reply_member} + 1};
  return std::span<const shm::Destination>(&reply, 1);
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
  message.id = outgoing.options.id() ? *outgoing.options.id() : Uuid::generate();
  message.earlier_deliveries = outgoing.options.earlier_deliveries();
  message.request_id = outgoing.options.request_id().value_or(message.id);
  if (outgoing.replying_to != nullptr) message.response_to = outgoing.replying_to->id;
  message.sender = core_.options.service;
  return message;
}

Result<void> Sender::fits(const SendRoute& route, std::span<const shm::Destination> to, std::size_t size) const {
  const std::size_t largest = to.front().link->pool().largest_chunk();
  if (size <= largest) return {};
  return Error{ErrorCode::payload_too_large, "message '" + route.public_name + "' needs " + std::to_string(size) +
                                                 " bytes; the largest size class holds " + std::to_string(largest) +
                                                 "; raise bus.size-classes in the configuration"};
}

std::uint64_t Sender::send_time() const {
  const std::uint32_t observers = core_.memory->directory().header().observers.load(std::memory_order_relaxed);
  if ((observers & shm::kObserveSendTimes) == 0) return 0;
  return envelope_clock_ns();
}

Envelope Sender::envelope() const { return {static_cast<std::uint16_t>(core_.member()), send_time()}; }

shm::PoolStatus Sender::allocate_parts(std::span<shm::Part> parts, std::size_t size, std::uint32_t copy_bytes) {
  const std::byte* first = nullptr;
  for (shm::Part& part : parts) {
    if (part.handle.is_null()) {
      const shm::Allocation allocation = core_.plane->allocate(*part.to.link, size);
      if (allocation.status != shm::PoolStatus::ok) return allocation.status;
      part.handle = allocation.handle;
      if (first != nullptr && copy_bytes > 0) std::memcpy(allocation.buffer.data(), first, copy_bytes);
      if (first == nullptr) first = allocation.buffer.data();
    } else if (first == nullptr) {
      first = part.to.link->pool().owned_buffer(part.handle).data();
    }
  }
  return shm::PoolStatus::ok;
}

void Sender::abandon_parts(std::span<const shm::Part> parts) {
  for (const shm::Part& part : parts) {
    if (!part.handle.is_null()) core_.plane->abandon(*part.to.link, part.handle);
  }
}

shm::SendResult Sender::publish_parts(std::span<shm::Part> parts, bool wait_for_room,
                                      SendDeadline& deadline) {
  shm::SendResult sent{shm::SendStatus::queue_full};
  {
    const SendLanes::Held lane = core_.lanes.acquire();
    for (;;) {
      sent = core_.plane->publish(lane.cursor(), parts);
      if (sent.status != shm::SendStatus::queue_full || !wait_for_room || deadline.passed()) {
        break;
      }
      std::this_thread::yield();
    }
  }
  if (sent.status != shm::SendStatus::ok) abandon_parts(parts);
  return sent;
}

Result<void> Sender::send(Outgoing outgoing) {
  const bool is_reply = outgoing.replying_to != nullptr;
  const Result<const SendRoute*> found = route_for(outgoing);
  if (!found) return found.error();
  const SendRoute& route = *found.value();
  const Result<const SendRoute::Version*> version = version_for(route, outgoing.options);
  if (!version) return version.error();
  if (Result<void> valid = check_payload_of(*version.value(), outgoing.payload); !valid) return valid;
  shm::Destination reply_to;
  const Result<std::span<const shm::Destination>> to = destinations_of(route, outgoing, reply_to);
  if (!to) return to.error();
  if (to.value().size() > shm::kMaxTargets) {
    return Error{ErrorCode::config_error, quote_name(route.public_name) + " goes to " +
                                              std::to_string(to.value().size()) + " service types; a message reaches at most " +
                                              std::to_string(shm::kMaxTargets)};
  }

  // Encoded straight from these views into the first chunk: no copy of name or payload.
  const MessageView message = message_for(route, version.value()->version, outgoing.payload, outgoing);
  const std::size_t size = enveloped_size(message);
  if (Result<void> fitting = fits(route, to.value(), size); !fitting) return fitting;
  const bool awaiting = outgoing.awaiting.has_value();
  if (awaiting) {
    for (const shm::Destination& destination : to.value()) {
      outgoing.awaiting->responders.push_back(destination.link->receiver());
    }
    core_.pending.add(message.id, std::move(*outgoing.awaiting));
  }
  const auto fail = [&](Error error) {
    if (awaiting) core_.pending.cancel(message.id);
    return error;
  };

  shm::Part parts[shm::kMaxTargets];
  const std::span<shm::Part> targets(parts, to.value().size());
  for (std::size_t t = 0; t < targets.size(); ++t) targets[t].to = to.value()[t];
  SendDeadline deadline(core_.options.send_timeout);
  // The first chunk is encoded into, the others are copies of it.
  const auto may_wait = [&] { return outgoing.wait_for_room && !deadline.passed(); };
  shm::Allocation first = core_.plane->allocate(*targets[0].to.link, size);
  while (first.status == shm::PoolStatus::exhausted && may_wait()) {
    std::this_thread::yield();
    first = core_.plane->allocate(*targets[0].to.link, size);
  }
  if (first.status != shm::PoolStatus::ok) return fail(exhausted(size));
  targets[0].handle = first.handle;
  const Result<std::size_t> encoded = encode_enveloped(envelope(), message, first.buffer);
  if (!encoded) {
    abandon_parts(targets);
    return fail(encoded.error());
  }
  const auto length = static_cast<std::uint32_t>(encoded.value());
  for (shm::Part& part : targets) part.length = length;
  // The copies for the other targets (a send to one type has none to make).
  shm::PoolStatus allocated = targets.size() > 1 ? allocate_parts(targets, size, length) : shm::PoolStatus::ok;
  while (allocated == shm::PoolStatus::exhausted && may_wait()) {
    std::this_thread::yield();
    allocated = allocate_parts(targets, size, length);
  }
  if (allocated != shm::PoolStatus::ok) {
    abandon_parts(targets);
    return fail(exhausted(size));
  }
  const shm::SendResult sent = publish_parts(targets, outgoing.wait_for_room, deadline);
  if (sent.status != shm::SendStatus::ok) return fail(refusal(sent, targets, is_reply));
  core_.record().sent.fetch_add(1, std::memory_order_relaxed);
  if (is_reply) shm::count_reply(core_.record().outcomes, route.outcome_hash);
  return {};
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
      send(Outgoing::request(name, payload, options, {first_reply, std::chrono::steady_clock::now() + timeout, {}}));
  if (!sent) promise->set_value(sent.error());
  return future;
}

Result<Reply> Sender::call(std::string_view name, std::string_view payload, std::chrono::milliseconds timeout,
                           const SendOptions& options) {
  if (core_.receiver.in_reply_handler()) {
    return Error{ErrorCode::refused, "call('" + std::string(name) +
                                         "') from a reply handler of the same service would wait for itself; "
                                         "send it with a reply handler instead"};
  }
  auto first = std::make_shared<FirstReply>();
  Result<void> sent = send(Outgoing::request(
      name, payload, options, {FirstReply::handler(first), std::chrono::steady_clock::now() + timeout, {}}));
  if (!sent) return sent.error();
  core_.receiver.take_replies_until(*first);
  Reply reply = first->take();
  if (reply.timed_out) {
    return Error{ErrorCode::timeout,
                 "no reply to '" + std::string(name) + "' within " + std::to_string(timeout.count()) + " ms"};
  }
  return reply;
}

Error Sender::exhausted(std::size_t size) const {
  return Error{ErrorCode::pool_exhausted, "no free message buffer of " + std::to_string(size) +
                                              " bytes towards a receiving type; raise the size class counts in the "
                                              "configuration or let receivers catch up"};
}

Error Sender::refusal(const shm::SendResult& sent, std::span<const shm::Part> parts, bool is_reply) const {
  if (sent.status == shm::SendStatus::queue_full) {
    const shm::Part& full = parts[std::min<std::size_t>(sent.failed_part, parts.size() - 1)];
    const std::string target = is_reply ? std::string("the requester's reply inbox")
                                        : "service type '" +
                                              std::string(core_.routing.current().type_name(full.to.link->receiver())) +
                                              "'";
    const shm::Channel* channel =
        full.to.channel == shm::kTypeChannel ? &full.to.link->type_channel() : full.to.link->reply_channel(full.to.channel - 1);
    return Error{ErrorCode::queue_full, "queue for " + target + " is full (" + std::to_string(channel->capacity()) +
                                            " messages); raise queue-capacity in the configuration or add instances"};
  }
  return Error{ErrorCode::corrupted, "the bus refused the message (status " +
                                         std::to_string(static_cast<int>(sent.status)) +
                                         "); the memory of a link may be damaged, and exobusd repairs it"};
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
  if (Result<void> fitting = fits(route, route.destinations, size); !fitting) return fitting.error();
  shm::Link& link = *route.destinations.front().link;
  SendDeadline deadline(core_.options.send_timeout);
  shm::Allocation allocation = core_.plane->allocate(link, size);
  while (allocation.status == shm::PoolStatus::exhausted && !deadline.passed()) {
    std::this_thread::yield();
    allocation = core_.plane->allocate(link, size);
  }
  if (allocation.status != shm::PoolStatus::ok) return exhausted(size);
  Result<std::size_t> encoded = encode_enveloped_around_payload(envelope(), message, payload_size, allocation.buffer);
  if (!encoded) {
    core_.plane->abandon(link, allocation.handle);
    return encoded.error();
  }
  // The chunk is this instance's (the pool records the owner, not a lane), so no lane is
  // held while the application writes: recovery frees the chunk if the process dies.
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
  shm::Part parts[shm::kMaxTargets];
  const std::span<shm::Part> targets(parts, std::min<std::size_t>(route.destinations.size(), shm::kMaxTargets));
  for (std::size_t t = 0; t < targets.size(); ++t) targets[t] = {route.destinations[t], {}, loan.length_};
  targets[0].handle = handle;
  Result<void> valid = core_.detached.load(std::memory_order_relaxed)
                           ? Result<void>(stopped_error())
                           : check_payload_of(version, std::string_view(loan.payload_.data(), loan.payload_.size()));
  if (!valid) {
    abandon_parts(targets);
    return valid;
  }
  // Stamped before the copies for the other targets are made from it.
  if (const std::uint64_t now = send_time(); now != 0) {
    std::byte* const chunk_start = reinterpret_cast<std::byte*>(loan.payload_.data() + loan.payload_.size()) - loan.length_;
    restamp_sent_at(std::span<std::byte>(chunk_start, loan.length_), now);
  }
  SendDeadline deadline(core_.options.send_timeout);
  shm::PoolStatus allocated = allocate_parts(targets, loan.length_, loan.length_);
  while (allocated == shm::PoolStatus::exhausted && !deadline.passed()) {
    std::this_thread::yield();
    allocated = allocate_parts(targets, loan.length_, loan.length_);
  }
  if (allocated != shm::PoolStatus::ok) {
    abandon_parts(targets);
    return exhausted(loan.length_);
  }
  const shm::SendResult sent = publish_parts(targets, true, deadline);
  if (sent.status != shm::SendStatus::ok) return refusal(sent, targets, false);
  core_.record().sent.fetch_add(1, std::memory_order_relaxed);
  return {};
}

void Sender::abandon_loan(Loan& loan) {
  const shm::MessageHandle handle = shm::MessageHandle::from_word(loan.chunk_);
  if (shm::Link* link = core_.memory->link(handle.link())) core_.plane->abandon(*link, handle);
  loan.core_ = nullptr;
}

}  // namespace exobus::client
