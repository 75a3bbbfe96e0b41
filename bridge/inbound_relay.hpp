#pragma once
// JetStream -> bus. Two kinds, one class:
//
// The commands for one service type that runs on this host: pulled from the type's durable
// consumer (shared with the bridges of the other hosts that run it, so their instances
// compete for its messages) and sent into the local bus, to that type alone, as their
// sender: through the bridge's own instance of the sending type, whose configuration the
// send is checked against (its `sends`, versions, schemas) as on the sender's host. A
// command whose sender receives replies from the type is sent awaiting them: each reply
// that comes back within the reply window is published to the requester's host.
//
// The replies for the requesters on this host: pulled from the host's reply consumer and
// sent, through the bridge's instance of the replying type, to the requesting instance.
//
// A pulled message is acknowledged only once the local send was accepted, so at every
// instant it is in the stream (pending or delivered unacknowledged) or in the bus. A send
// refused for now (a full queue, no free buffer) hands it back to JetStream for later,
// which with max-ack-pending holds the consumer: back-pressure reaches the stream. A bridge
// that dies before the ack has the message redelivered after ack-wait-ms, flagged: its
// JetStream deliveries are counted into the delivery count the receiver sees, and so is a
// copy of a message this relay remembers having delivered (recent_ids.hpp).
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "exobus/config.hpp"
#include "exobus/service.hpp"
#include "jetstream.hpp"
#include "recent_ids.hpp"
#include "relay_counters.hpp"

namespace exobus::bridge {

class InboundRelay {
 public:
  // The bridge's instance of a service type, or null when it has none (that type sends
  // nothing across to this host).
  using InstanceLookup = std::function<Service*(const std::string& type)>;

  static Result<std::unique_ptr<InboundRelay>> open_commands(const ApplicationConfig& application,
                                                             ServiceTypeIndex type,
                                                             std::chrono::milliseconds reply_window, JetStream& jet,
                                                             InstanceLookup instances);
  static Result<std::unique_ptr<InboundRelay>> open_replies(const ApplicationConfig& application,
                                                            const std::string& host, JetStream& jet,
                                                            InstanceLookup instances);
  InboundRelay(const InboundRelay&) = delete;
  InboundRelay& operator=(const InboundRelay&) = delete;
  ~InboundRelay() { stop(); }

  void start();
  void stop();
  const RelayCounters& counters() const { return counters_; }
  PullConsumer& consumer() { return *consumer_; }

 private:
  InboundRelay(const ApplicationConfig& application, std::optional<ServiceTypeIndex> type, std::string what,
               std::chrono::milliseconds reply_window, std::unique_ptr<PullConsumer> consumer, JetStream& jet,
               InstanceLookup instances)
      : application_(application),
        type_(type),
        what_(std::move(what)),
        reply_window_(reply_window),
        consumer_(std::move(consumer)),
        jet_(jet),
        instances_(std::move(instances)) {}
  void run();
  void deliver(PulledMessage& pulled);
  // The bus's answer to a send of `pulled`: ack, retry later, or refuse for good.
  void settle(PulledMessage& pulled, const Result<void>& sent);
  Result<void> send_command(const CrossingMessage& message, ServiceTypeIndex sender_type, Service& sender,
                            std::uint16_t earlier);
  Result<void> send_reply(const CrossingMessage& message, ServiceTypeIndex replier_type, Service& replier,
                          std::uint16_t earlier);
  // Publishes a reply made on this host to its requester's host, until JetStream stored it
  // or the bridge stops.
  void return_reply(const CrossingMessage& command, ServiceTypeIndex requester_type, const Reply& reply);
  void refuse(PulledMessage& pulled, const std::string& why);

  const ApplicationConfig& application_;
  std::optional<ServiceTypeIndex> type_;  // the commands' type; none for replies
  std::string what_;                      // for the log: "commands for T", "replies for H"
  std::chrono::milliseconds reply_window_;
  std::unique_ptr<PullConsumer> consumer_;
  JetStream& jet_;
  InstanceLookup instances_;
  std::atomic<bool> stopping_{false};
  std::thread puller_;
  RecentIds delivered_{1 << 16};  // the puller's own
  RelayCounters counters_;
};

}  // namespace exobus::bridge
