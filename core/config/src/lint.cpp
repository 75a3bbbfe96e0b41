#include "exobus/lint.hpp"

#include "exobus/message_name.hpp"

namespace exobus {
namespace {

bool anyone_sends(const RoutingTable& routing, std::string_view public_name) {
  for (ServiceTypeIndex type = 0; type < routing.type_count(); ++type) {
    if (routing.may_send(type, public_name)) return true;
  }
  return false;
}

}  // namespace

std::vector<LintFinding> lint(const ApplicationConfig& config) {
  const RoutingTable& routing = config.routing;
  std::vector<LintFinding> findings;
  for (ServiceTypeIndex type = 0; type < config.services.size(); ++type) {
    const ServiceTypeConfig& service = config.services[type];
    for (const std::string& name : service.sends) {
      const std::string_view public_name = routing.to_public(type, name);
      if (routing.receivers(public_name).empty()) {
        findings.push_back({LintFinding::Kind::sent_but_never_received, service.name, std::string(public_name), name});
      }
    }
    for (const std::string& name : service.receives) {
      const std::string_view public_name = routing.to_public(type, name);
      if (!anyone_sends(routing, public_name)) {
        findings.push_back({LintFinding::Kind::received_but_never_sent, service.name, std::string(public_name), name});
      }
    }
  }
  if (const auto& metrics = config.bus.metrics_address; metrics && !metrics->host.starts_with("127.")) {
    findings.push_back({LintFinding::Kind::metrics_beyond_loopback, "", metrics->text(), metrics->text()});
  }
  return findings;
}

std::string to_string(const LintFinding& finding) {
  const std::string translated =
      finding.as_declared == finding.message ? "" : " (its " + quote_name(finding.as_declared) + ")";
  switch (finding.kind) {
    case LintFinding::Kind::sent_but_never_received:
      return "service '" + finding.service + "' sends " + quote_name(finding.message) + translated +
             " but no service receives it; add it to a receiver's receives or drop it from '" + finding.service +
             "' sends";
    case LintFinding::Kind::received_but_never_sent:
      return "service '" + finding.service + "' receives " + quote_name(finding.message) + translated +
             " but no service sends it; add it to a sender's sends or drop it from '" + finding.service + "' receives";
    case LintFinding::Kind::metrics_beyond_loopback:
      return "bus.metrics-address " + finding.message +
             " serves the bus's metrics (its service types and their traffic) to other hosts; use a 127.x.x.x "
             "address unless a scraper elsewhere needs them";
  }
  return {};
}

}  // namespace exobus
