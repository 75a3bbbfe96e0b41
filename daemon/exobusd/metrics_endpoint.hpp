#pragma once
// The daemon's Prometheus metrics: an HTTP endpoint (prometheus-cpp's pull exposer, served
// by civetweb on threads of its own) that answers each scrape from the last figures the
// coordinator published. The coordinator publishes once a second from its event loop, so a
// scrape never touches the bus's memory nor waits for the loop, and a slow scraper slows
// nothing but itself. Nothing here is on the data path.
//
// Names and labels (docs/config.md, "Metrics"): counters per service type
// (exobus_messages_{sent,delivered,acked,redelivered}_total{type}), refusals by receiving and
// sending type and reason (exobus_messages_refused_total{type,sender,reason}), gauges for
// depth, in flight, dead letters and instances per type, histograms of queueing delay and
// handler time per type (exobus_{queueing_delay,handler}_seconds{type}), and the message
// buffers per size class.
#include <memory>
#include <string>

#include "bus_figures.hpp"
#include "exobus/config.hpp"
#include "exobus/error.hpp"

namespace prometheus {
class Exposer;
}

namespace exobus::daemon {

class MetricsEndpoint {
 public:
  // Listens on `address` (port 0: one the kernel chooses); io when it cannot (the port is
  // taken, the address is not this host's).
  static Result<std::unique_ptr<MetricsEndpoint>> open(const MetricsAddress& address);
  ~MetricsEndpoint();
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  // What scrapes answer from now on.
  void publish(BusFigures figures);
  // host:port, the port the endpoint listens on.
  const std::string& address() const { return address_; }

 private:
  class Families;
  MetricsEndpoint() = default;

  std::shared_ptr<Families> families_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::string address_;
};

}  // namespace exobus::daemon
