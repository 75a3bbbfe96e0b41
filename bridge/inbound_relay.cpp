#include "inbound_relay.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace exobus::bridge {

namespace {

constexpr int kBatch = 64;
constexpr std::int64_t kFetchWaitMs = 500;   // how soon a stop is noticed
constexpr std::int64_t kRetryLaterMs = 200;  // a full queue is tried again after this

// Whether `replier` may reply something `requester` receives: only then does a command
// between them wait for replies.
bool replies_possible(const ApplicationConfig& application, ServiceTypeIndex replier, ServiceTypeIndex requester) {
  for (const std::string& name : application.routing.sends(replier)) {
    if (application.routing.receives_name(requester, name)) return true;
  }
  return false;
}

}  // namespace

Result<std::unique_ptr<InboundRelay>> InboundRelay::open_commands(const ApplicationConfig& application,
                                                                  ServiceTypeIndex type,
                                                                  std::chrono::milliseconds reply_window,
                                                                  JetStream& jet, InstanceLookup instances) {
  Result<std::unique_ptr<PullConsumer>> consumer = jet.consume_commands(application.services[type].name);
  if (!consumer) return consumer.error();
  return std::unique_ptr<InboundRelay>(new InboundRelay(application, type,
                                                        "commands for " + application.services[type].name, reply_window,
                                                        std::move(consumer.value()), jet, std::move(instances)));
}

Result<std::unique_ptr<InboundRelay>> InboundRelay::open_replies(const ApplicationConfig& application,
                                                                 const std::string& host, JetStream& jet,
                                                                 InstanceLookup instances) {
  Result<std::unique_ptr<PullConsumer>> consumer = jet.consume_replies(host);
  if (!consumer) return consumer.error();
  return std::unique_ptr<InboundRelay>(new InboundRelay(application, std::nullopt, "replies for " + host,
                                                        std::chrono::milliseconds(0), std::move(consumer.value()), jet,
                                                        std::move(instances)));
}

void InboundRelay::start() {
  puller_ = std::thread([this] { run(); });
}

void InboundRelay::stop() {
  stopping_.store(true, std::memory_order_relaxed);
  if (puller_.joinable()) puller_.join();
}

void InboundRelay::run() {
  while (!stopping_.load(std::memory_order_relaxed)) {
    Result<std::vector<PulledMessage>> batch = consumer_->fetch(kBatch, kFetchWaitMs);
    if (!batch) {
      // Reconnecting, or the consumer's leader moving: nothing was taken, so try again.
      spdlog::debug("fetch of {}: {}", what_, batch.error().message);
      std::this_thread::sleep_for(std::chrono::milliseconds(kRetryLaterMs));
      continue;
    }
    for (PulledMessage& pulled : batch.value()) deliver(pulled);
  }
}

void InboundRelay::refuse(PulledMessage& pulled, const std::string& why) {
  spdlog::error("one of the {} cannot enter this bus and is dropped from the stream: {}", what_, why);
  counters_.refused.fetch_add(1, std::memory_order_relaxed);
  (void)pulled.term();
}

void InboundRelay::deliver(PulledMessage& pulled) {
  Result<CrossingMessage> read = read_crossing(pulled.get());
  if (!read) return refuse(pulled, read.error().message);
  const CrossingMessage& message = read.value();
  if (message.response_to.has_value() == type_.has_value()) {
    return refuse(pulled, std::string(type_ ? "a reply" : "a command") + " on the subject of the " + what_);
  }
  if (!type_ && !message.return_address) return refuse(pulled, "a reply without its return address");

  // The receiving host checks the sender's right again, from its own configuration.
  const std::optional<ServiceTypeIndex> sender_type = application_.find_service(message.sender);
  const std::optional<ServiceTypeIndex> receiver_type =
      type_ ? type_ : application_.find_service(message.return_address->requester);
  if (!sender_type || !receiver_type || !application_.routing.may_send(*sender_type, message.name) ||
      !application_.routing.receives_name(*receiver_type, message.name)) {
    return refuse(pulled, "'" + message.sender + "' may not send '" + message.name + "' to '" +
                              (receiver_type ? application_.services[*receiver_type].name : "?") + "'");
  }
  Service* sender = instances_(message.sender);
  if (sender == nullptr) return refuse(pulled, "this bridge has no instance of '" + message.sender + "'");

  // Deliveries on the way: those on the sender's bus, and JetStream's before this one.
  const std::uint64_t earlier =
      message.deliveries + (pulled.delivered() - 1) + (delivered_.contains(message.id) ? 1 : 0);
  const auto capped = static_cast<std::uint16_t>(std::min<std::uint64_t>(earlier, 0xffff));
  const Result<void> sent =
      type_ ? send_command(message, *sender_type, *sender, capped) : send_reply(message, *sender_type, *sender, capped);
  if (sent) delivered_.add(message.id);
  settle(pulled, sent);
}

Result<void> InboundRelay::send_command(const CrossingMessage& message, ServiceTypeIndex sender_type, Service& sender,
                                        std::uint16_t earlier) {
  const std::string& to = application_.services[*type_].name;
  const SendOptions options =
      SendOptions().version(message.version).request_id(message.request_id).relayed(message.id, earlier, to);
  const std::string internal(application_.routing.to_internal(sender_type, message.name));
  if (!message.return_address || !replies_possible(application_, *type_, sender_type)) {
    return sender.send(internal, message.payload, options);
  }
  // Replies come to the bridge's instance of the sender, and go on to the requester.
  return sender.send(
      internal, message.payload,
      [this, command = message, sender_type](const Reply& reply) {
        if (reply.timed_out) return ReplyControl::done;
        return_reply(command, sender_type, reply);
        return ReplyControl::more;
      },
      reply_window_, options);
}

void InboundRelay::return_reply(const CrossingMessage& command, ServiceTypeIndex requester_type, const Reply& reply) {
  CrossingMessage crossing;
  crossing.name = std::string(application_.routing.to_public(requester_type, reply.message.name));
  crossing.version = reply.message.version;
  crossing.payload = reply.payload;
  crossing.id = reply.message.id;
  crossing.request_id = reply.message.request_id;
  crossing.response_to = reply.message.response_to;
  crossing.sender = reply.message.sender;
  crossing.deliveries = static_cast<std::uint16_t>(std::min<unsigned>(reply.message.deliveries, 0xffff));
  crossing.return_address = command.return_address;
  // On the library's reply thread: the next reply waits until this one is stored. A reply
  // that cannot be stored before the bridge stops is lost with it, as a reply is lost on
  // one host when its requester's bus instance goes.
  for (;;) {
    Result<void> published = jet_.publish_reply(crossing);
    if (published) {
      counters_.relayed.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    counters_.retried.fetch_add(1, std::memory_order_relaxed);
    if (stopping_.load(std::memory_order_relaxed)) {
      spdlog::warn("a reply to {} was not published before the bridge stopped: {}", command.id.to_string(),
                   published.error().message);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(kRetryLaterMs));
  }
}

Result<void> InboundRelay::send_reply(const CrossingMessage& message, ServiceTypeIndex replier_type, Service& replier,
                                      std::uint16_t earlier) {
  const CrossingMessage::ReturnAddress& to = *message.return_address;
  const SendOptions options =
      SendOptions().version(message.version).request_id(message.request_id).relayed(message.id, earlier, {});
  const std::string internal(application_.routing.to_internal(replier_type, message.name));
  return replier.reply_to({*message.response_to, to.requester, to.member}, internal, message.payload, options);
}

void InboundRelay::settle(PulledMessage& pulled, const Result<void>& sent) {
  if (sent) {
    // In the bus now: the stream may forget it. A lost ack redelivers it, flagged.
    (void)pulled.ack();
    counters_.relayed.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  switch (sent.error().code) {
    case ErrorCode::queue_full:
    case ErrorCode::pool_exhausted:
    case ErrorCode::timeout:
    case ErrorCode::daemon_not_running:
    case ErrorCode::io:
    case ErrorCode::closed:  // the bridge is stopping
      counters_.retried.fetch_add(1, std::memory_order_relaxed);
      (void)pulled.nak(kRetryLaterMs);
      return;
    default: return refuse(pulled, sent.error().message);
  }
}

}  // namespace exobus::bridge
