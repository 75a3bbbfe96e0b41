#pragma once
// JetStream -> bus, for one service type that runs on this host: pulls from the type's
// durable consumer (shared with the bridges of the other hosts that run it, so their
// instances compete for its messages) and sends each message into the local bus, to that
// type alone, as its sender: through the bridge's own instance of the sending type, whose
// configuration the send is checked against (its `sends`, versions, schemas) as on the
// sender's host.
//
// The pulled message is acknowledged only once the local send was accepted, so at every
// instant it is in the stream (pending or delivered unacknowledged) or in the bus. A send
// refused for now (a full queue, no free buffer) hands it back to JetStream for later,
// which with max-ack-pending holds the consumer: back-pressure reaches the stream. A bridge
// that dies before the ack has the message redelivered after ack-wait-ms, flagged: its
// JetStream deliveries are counted into the delivery count the receiver sees.
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "exobus/config.hpp"
#include "exobus/service.hpp"
#include "jetstream.hpp"
#include "relay_counters.hpp"

namespace exobus::bridge {

class InboundRelay {
 public:
  // The bridge's instance of a sending type, or null when it has none (the sender may not
  // send anything to this type).
  using SenderLookup = std::function<Service*(const std::string& type)>;

  static Result<std::unique_ptr<InboundRelay>> open(const ApplicationConfig& application, ServiceTypeIndex type,
                                                    JetStream& jet, SenderLookup senders);
  InboundRelay(const InboundRelay&) = delete;
  InboundRelay& operator=(const InboundRelay&) = delete;
  ~InboundRelay() { stop(); }

  void start();
  void stop();
  const RelayCounters& counters() const { return counters_; }
  PullConsumer& consumer() { return *consumer_; }

 private:
  InboundRelay(const ApplicationConfig& application, ServiceTypeIndex type, std::unique_ptr<PullConsumer> consumer,
               SenderLookup senders)
      : application_(application),
        type_(type),
        type_name_(application.services[type].name),
        consumer_(std::move(consumer)),
        senders_(std::move(senders)) {}
  void run();
  void deliver(PulledMessage& pulled);
  void refuse(PulledMessage& pulled, const std::string& why);

  const ApplicationConfig& application_;
  ServiceTypeIndex type_;
  std::string type_name_;
  std::unique_ptr<PullConsumer> consumer_;
  SenderLookup senders_;
  std::atomic<bool> stopping_{false};
  std::thread puller_;
  RelayCounters counters_;
};

}  // namespace exobus::bridge
