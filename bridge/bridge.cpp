#include "bridge.hpp"

#include <spdlog/spdlog.h>

#include "exobus/control/runtime_paths.hpp"

#include <algorithm>
#include <cstdlib>

namespace exobus::bridge {

namespace {

// Whether `sender` may send something `receiver` receives.
bool sends_to(const ApplicationConfig& application, ServiceTypeIndex sender, ServiceTypeIndex receiver) {
  for (const std::string& name : application.routing.sends(sender)) {
    if (application.routing.receives_name(receiver, name)) return true;
  }
  return false;
}

}  // namespace

Result<std::unique_ptr<Bridge>> Bridge::start(const BridgeOptions& options) {
  std::unique_ptr<Bridge> bridge(new Bridge());
  if (Result<void> opened = bridge->open(options); !opened) return opened.error();
  return bridge;
}

Result<void> Bridge::open(const BridgeOptions& options) {
  Result<ApplicationConfig> application = load_application_config(options.application_file);
  if (!application) return application.error();
  application_ = std::move(application.value());
  Result<Deployment> deployment = load_deployment(options.deployment_file, application_);
  if (!deployment) return deployment.error();
  deployment_ = std::move(deployment.value());
  host_ = options.host;
  if (!deployment_.has_host(host_)) {
    return Error{ErrorCode::config_error,
                 "host '" + host_ + "' is not under hosts in " + options.deployment_file.string()};
  }

  Result<std::unique_ptr<JetStream>> jet =
      JetStream::connect(deployment_.nats, application_.name, "exobus-bridge " + application_.name + "@" + host_);
  if (!jet) return jet.error();
  jet_ = std::move(jet.value());
  spdlog::info("connected to NATS at {}", jet_->connected_url());

  ServiceOptions service;
  service.bus = options.bus;
  if (service.bus.empty()) {
    const char* from_environment = std::getenv("EXOBUS_BUS");
    service.bus = from_environment != nullptr ? from_environment : application_.name;
  }
  service.runtime_dir = options.runtime_dir;
  Result<control::RuntimePaths> paths =
      options.runtime_dir.empty()
          ? control::runtime_paths(service.bus)
          : control::runtime_paths(service.bus, control::RuntimeDir{options.runtime_dir, false});
  if (!paths) return paths.error();
  status_path_ = paths.value().bridge_status;

  for (ServiceTypeIndex type = 0; type < application_.services.size(); ++type) {
    const std::string& name = application_.services[type].name;
    if (!deployment_.is_placed(name) || deployment_.runs_on(name, host_)) continue;
    Result<std::unique_ptr<OutboundRelay>> relay = OutboundRelay::connect(application_, type, host_, service, *jet_);
    if (!relay) return relay.error();
    outbound_.emplace(name, std::move(relay.value()));
  }
  for (ServiceTypeIndex type = 0; type < application_.services.size(); ++type) {
    const std::string& name = application_.services[type].name;
    if (!deployment_.is_placed(name) || !deployment_.runs_on(name, host_)) continue;
    for (ServiceTypeIndex from = 0; from < application_.services.size(); ++from) {
      const std::string& sender_name = application_.services[from].name;
      if (!sends_to(application_, from, type) || outbound_.count(sender_name) || send_only_.count(sender_name))
        continue;
      ServiceOptions as_sender = service;
      as_sender.service = sender_name;
      Result<std::unique_ptr<Service>> connected = Service::connect(as_sender);
      if (!connected) return connected.error();
      send_only_.emplace(sender_name, std::move(connected.value()));
    }
    Result<std::unique_ptr<InboundRelay>> relay =
        InboundRelay::open_commands(application_, type, deployment_.reply_window, *jet_,
                                    [this](const std::string& type) { return instance(type); });
    if (!relay) return relay.error();
    inbound_.emplace(name, std::move(relay.value()));
  }
  Result<std::unique_ptr<InboundRelay>> replies = InboundRelay::open_replies(
      application_, host_, *jet_, [this](const std::string& type) { return instance(type); });
  if (!replies) return replies.error();
  replies_ = std::move(replies.value());

  for (auto& [name, relay] : outbound_) {
    if (Result<void> started = relay->start(); !started) return started.error();
  }
  for (auto& [name, relay] : inbound_) relay->start();
  replies_->start();
  std::string carried, pulled;
  for (const auto& [name, relay] : outbound_) carried += (carried.empty() ? "" : ", ") + name;
  for (const auto& [name, relay] : inbound_) pulled += (pulled.empty() ? "" : ", ") + name;
  spdlog::info("bridge of {} on host {} (bus {}): to other hosts: [{}]; from other hosts: [{}]", application_.name,
               host_, service.bus, carried, pulled);
  return {};
}

Service* Bridge::instance(const std::string& type) {
  if (auto relay = outbound_.find(type); relay != outbound_.end()) return &relay->second->service();
  if (auto own = send_only_.find(type); own != send_only_.end()) return own->second.get();
  return nullptr;
}

void Bridge::stop() {
  if (stopped_) return;
  stopped_ = true;
  // Pulling stops first, so nothing new enters the bus through a service being stopped.
  for (auto& [name, relay] : inbound_) relay->stop();
  if (replies_) replies_->stop();
  for (auto& [name, relay] : outbound_) relay->stop();
  for (auto& [name, service] : send_only_) service->stop();
}

std::vector<std::string> Bridge::status() {
  std::vector<std::string> lines;
  lines.push_back(std::string("nats ") +
                  (jet_->connected() ? "connected to " + jet_->connected_url() : "disconnected"));
  for (const auto& [name, relay] : outbound_) {
    const RelayCounters& counted = relay->counters();
    lines.push_back("to " + name + ": published " + std::to_string(counted.relayed.load()) + ", publish retries " +
                    std::to_string(counted.retried.load()));
  }
  for (const auto& [name, relay] : inbound_) {
    const RelayCounters& counted = relay->counters();
    std::string lag = "unknown";
    if (Result<PullConsumer::Lag> got = relay->consumer().lag(); got) {
      lag = std::to_string(got.value().pending) + " pending, " + std::to_string(got.value().unacknowledged) +
            " unacknowledged";
    }
    lines.push_back("from " + name + ": relayed " + std::to_string(counted.relayed.load()) + ", retried " +
                    std::to_string(counted.retried.load()) + ", refused " + std::to_string(counted.refused.load()) +
                    ", lag " + lag);
  }
  const RelayCounters& replied = replies_->counters();
  lines.push_back("replies to this host: relayed " + std::to_string(replied.relayed.load()) + ", retried " +
                  std::to_string(replied.retried.load()) + ", refused " + std::to_string(replied.refused.load()));
  return lines;
}

}  // namespace exobus::bridge
