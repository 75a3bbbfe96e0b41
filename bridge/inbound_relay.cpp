#include "inbound_relay.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace exobus::bridge {

namespace {

constexpr int kBatch = 64;
constexpr std::int64_t kFetchWaitMs = 500;   // how soon a stop is noticed
constexpr std::int64_t kRetryLaterMs = 200;  // a full queue is tried again after this

}  // namespace

Result<std::unique_ptr<InboundRelay>> InboundRelay::open(const ApplicationConfig& application, ServiceTypeIndex type,
                                                         JetStream& jet, SenderLookup senders) {
  Result<std::unique_ptr<PullConsumer>> consumer = jet.consume(application.services[type].name);
  if (!consumer) return consumer.error();
  return std::unique_ptr<InboundRelay>(
      new InboundRelay(application, type, std::move(consumer.value()), std::move(senders)));
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
      spdlog::debug("fetch for '{}': {}", type_name_, batch.error().message);
      std::this_thread::sleep_for(std::chrono::milliseconds(kRetryLaterMs));
      continue;
    }
    for (PulledMessage& pulled : batch.value()) deliver(pulled);
  }
}

void InboundRelay::refuse(PulledMessage& pulled, const std::string& why) {
  spdlog::error("a message for '{}' cannot enter this bus and is dropped from the stream: {}", type_name_, why);
  counters_.refused.fetch_add(1, std::memory_order_relaxed);
  (void)pulled.term();
}

void InboundRelay::deliver(PulledMessage& pulled) {
  Result<CrossingMessage> read = read_crossing(pulled.get());
  if (!read) return refuse(pulled, read.error().message);
  const CrossingMessage& message = read.value();
  if (message.response_to) return refuse(pulled, "replies are not carried between hosts");

  // The receiving host checks the sender's right again, from its own configuration.
  const std::optional<ServiceTypeIndex> sender_type = application_.find_service(message.sender);
  if (!sender_type || !application_.routing.may_send(*sender_type, message.name) ||
      !application_.routing.receives_name(type_, message.name)) {
    return refuse(pulled, "'" + message.sender + "' may not send '" + message.name + "' to '" + type_name_ + "'");
  }
  Service* sender = senders_(message.sender);
  if (sender == nullptr) return refuse(pulled, "this bridge has no instance of '" + message.sender + "'");

  // Deliveries on the way: those on the sender's bus, and JetStream's before this one.
  const std::uint64_t earlier = message.deliveries + (pulled.delivered() - 1);
  const SendOptions options = SendOptions()
                                  .version(message.version)
                                  .request_id(message.request_id)
                                  .relayed(message.id, static_cast<std::uint16_t>(std::min<std::uint64_t>(earlier, 0xffff)),
                                           type_name_);
  const std::string internal(application_.routing.to_internal(*sender_type, message.name));
  Result<void> sent = sender->send(internal, message.payload, options);
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
    default:
      return refuse(pulled, sent.error().message);
  }
}

}  // namespace exobus::bridge
