#pragma once
// exobus-bridge: one per host, between the local bus and the NATS cluster. For every
// service type placed on other hosts it is an instance of that type here (an outbound
// relay); for every type placed on this host it pulls the type's messages from JetStream
// and sends them into the bus (an inbound relay) through its own instance of each type
// that may send to it. Types the deployment places nowhere run on every host and never
// cross.
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "deployment.hpp"
#include "exobus/config.hpp"
#include "exobus/service.hpp"
#include "inbound_relay.hpp"
#include "jetstream.hpp"
#include "outbound_relay.hpp"

namespace exobus::bridge {

struct BridgeOptions {
  std::filesystem::path application_file;
  std::filesystem::path deployment_file;
  std::string host;
  std::string bus;                      // default: $EXOBUS_BUS, else the application's name
  std::filesystem::path runtime_dir{};  // default: as for any service
};

class Bridge {
 public:
  static Result<std::unique_ptr<Bridge>> start(const BridgeOptions& options);
  Bridge(const Bridge&) = delete;
  Bridge& operator=(const Bridge&) = delete;
  ~Bridge() { stop(); }
  // Stops pulling, then leaves the bus: what is held unsettled goes back where it came from.
  void stop();
  // One line per relay: the connection, and per type what crossed and the consumer's lag.
  std::vector<std::string> status();
  // Where the bridge writes that status for `exobus status`.
  const std::filesystem::path& status_path() const { return status_path_; }
  const std::string& host() const { return host_; }

 private:
  Bridge() = default;
  Result<void> open(const BridgeOptions& options);
  // The bridge's instance of `type`: its outbound relay's, or a send-only one.
  Service* instance(const std::string& type);

  ApplicationConfig application_;
  Deployment deployment_;
  std::string host_;
  std::filesystem::path status_path_;
  std::unique_ptr<JetStream> jet_;
  std::map<std::string, std::unique_ptr<OutboundRelay>> outbound_;
  // Instances of sending types that run here too: they send and never receive.
  std::map<std::string, std::unique_ptr<Service>> send_only_;
  std::map<std::string, std::unique_ptr<InboundRelay>> inbound_;
  std::unique_ptr<InboundRelay> replies_;  // for the requesters on this host
  bool stopped_ = false;
};

}  // namespace exobus::bridge
