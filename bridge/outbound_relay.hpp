#pragma once
// Bus -> JetStream, for one service type that runs on other hosts: the bridge joins the
// local bus as an instance of that type, so what the bus routes to the type reaches the
// bridge as to any instance, and publishes each message to the type's subject.
//
// The lease is settled only once JetStream answered: acknowledged after its publish ack
// (the message is stored on the stream's replicas); until then the publish is repeated and
// the lease renewed, and a bridge that stops releases what it still holds. So
// at every instant the message is in the bus's queue, in the bridge's lease, or in the
// stream; a bridge that dies holding the lease has it recovered by the daemon and
// redelivered, and the publish repeated under the same message id is a duplicate that
// JetStream's de-duplication window drops.
//
// Each command carries its return address (this host, the requesting type and instance),
// so the replies made on the far side come back to the instance that asked, as
// Delivery::reply would send them here.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "exobus/config.hpp"
#include "exobus/service.hpp"
#include "jetstream.hpp"
#include "relay_counters.hpp"

namespace exobus::bridge {

class OutboundRelay {
 public:
  // Connects as an instance of `type` (not started yet) on the bus of `host`.
  static Result<std::unique_ptr<OutboundRelay>> connect(const ApplicationConfig& application, ServiceTypeIndex type,
                                                        const std::string& host, ServiceOptions options,
                                                        JetStream& jet);
  Result<void> start();
  void stop();

  Service& service() { return *service_; }
  const RelayCounters& counters() const { return counters_; }

 private:
  OutboundRelay(const ApplicationConfig& application, ServiceTypeIndex type, std::string host,
                std::unique_ptr<Service> service, JetStream& jet);
  void relay(Delivery& delivery);

  const ApplicationConfig& application_;
  ServiceTypeIndex type_;
  std::string type_name_;
  std::string host_;  // where the replies to what this relay carries come back
  // Between two publish attempts: well inside the type's ack-timeout-ms, so the lease
  // renewed after each never runs out.
  std::chrono::milliseconds retry_every_;
  std::unique_ptr<Service> service_;
  JetStream& jet_;
  std::atomic<bool> stopping_{false};
  RelayCounters counters_;
};

}  // namespace exobus::bridge
