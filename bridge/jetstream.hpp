#pragma once
// The bridge's side of the NATS cluster: one connection (reconnecting to any server of the
// list), the application's work-queue stream, publishes that return once JetStream has
// stored the message on its replicas, and durable pull consumers.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "crossing_message.hpp"
#include "deployment.hpp"
#include "exobus/error.hpp"

typedef struct __natsConnection natsConnection;
typedef struct __jsCtx jsCtx;
typedef struct __natsSubscription natsSubscription;
typedef struct __natsMsg natsMsg;

namespace exobus::bridge {

// A message pulled from a consumer; destroying it unsettled leaves it to JetStream, which
// redelivers it after ack-wait-ms.
class PulledMessage {
 public:
  explicit PulledMessage(natsMsg* message) : message_(message) {}
  PulledMessage(PulledMessage&& other) noexcept : message_(other.message_) { other.message_ = nullptr; }
  PulledMessage& operator=(PulledMessage&&) = delete;
  ~PulledMessage();

  natsMsg* get() const { return message_; }
  // Deliveries by JetStream so far, this one included.
  std::uint64_t delivered() const;
  Result<void> ack();
  // Redeliver after `delay_ms` (the bus refused it for now: a full queue).
  Result<void> nak(std::int64_t delay_ms);
  // Never redeliver: the bus can never take it (the sender may not send it there).
  Result<void> term();

 private:
  natsMsg* message_;
};

class PullConsumer {
 public:
  explicit PullConsumer(natsSubscription* subscription) : subscription_(subscription) {}
  PullConsumer(const PullConsumer&) = delete;
  PullConsumer& operator=(const PullConsumer&) = delete;
  ~PullConsumer();
  // Up to `batch` messages, waiting up to `timeout_ms` for the first; empty on a timeout.
  Result<std::vector<PulledMessage>> fetch(int batch, std::int64_t timeout_ms);
  // Messages the consumer has not delivered yet, and delivered but unacknowledged.
  struct Lag {
    std::uint64_t pending = 0;
    std::uint64_t unacknowledged = 0;
  };
  Result<Lag> lag();

 private:
  natsSubscription* subscription_;
};

class JetStream {
 public:
  // Connects, and creates the application's stream (or updates it to the settings).
  static Result<std::unique_ptr<JetStream>> connect(const NatsSettings& settings, const std::string& application,
                                                    const std::string& client_name);
  JetStream(const JetStream&) = delete;
  JetStream& operator=(const JetStream&) = delete;
  ~JetStream();

  // Returns once JetStream acknowledged the message for `type` (stored, or a duplicate of
  // one stored within the de-duplication window). Fails with io when no ack came.
  Result<void> publish_command(const CrossingMessage& message, const std::string& type);
  // As publish_command, for a reply to its return address's host.
  Result<void> publish_reply(const CrossingMessage& message);
  // Binds to (or creates) the durable pull consumer of the commands for `type`, or of the
  // replies for the requesters on `host`.
  Result<std::unique_ptr<PullConsumer>> consume_commands(const std::string& type);
  Result<std::unique_ptr<PullConsumer>> consume_replies(const std::string& host);
  bool connected() const;
  std::string connected_url() const;

 private:
  JetStream(const NatsSettings& settings, std::string application)
      : settings_(settings), application_(std::move(application)) {}
  Result<void> ensure_stream();
  Result<void> publish(const CrossingMessage& message, const std::string& subject, const std::string& dedup);
  Result<std::unique_ptr<PullConsumer>> consume(const std::string& subject, const std::string& durable);

  NatsSettings settings_;
  std::string application_;
  natsConnection* connection_ = nullptr;
  jsCtx* context_ = nullptr;
};

}  // namespace exobus::bridge
