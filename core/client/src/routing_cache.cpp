#include "routing_cache.hpp"

#include "exobus/message_name.hpp"

namespace exobus::client {

std::string RoutingState::type_of_ring(std::uint16_t ring) const {
  for (std::size_t t = 0; t < ring_of_type.size(); ++t) {
    if (ring_of_type[t] == ring) return config.services[t].name;
  }
  return {};
}

Result<void> RoutingCache::load(const control::RoutingReply& reply) {
  Result<ApplicationConfig> config = load_application_config(reply.config_file);
  if (!config) return config.error();
  auto state = std::make_unique<RoutingState>();
  state->config = std::move(config).value();
  const std::optional<ServiceTypeIndex> type = state->config.find_service(service_type_);
  if (!type) return Error{ErrorCode::config_error, "service type '" + service_type_ + "' left the configuration"};
  state->type = *type;
  for (const ServiceTypeConfig& service : state->config.services) {
    const auto ring = reply.type_rings.find(service.name);
    if (ring == reply.type_rings.end()) {
      return Error{ErrorCode::config_error, "the daemon has no queue for service type '" + service.name +
                                                "' yet; send exobusd SIGHUP after editing the configuration"};
    }
    state->ring_of_type.push_back(ring->second);
  }
  const RoutingTable& table = state->config.routing;
  for (const std::string& public_name : table.sends(state->type)) {
    const MessageVersions& versions = table.versions(state->type, public_name);
    SendRoute route{public_name, {}, {}, versions.default_version};
    for (const double version : versions.known)
      route.versions.push_back({version, table.schemas(public_name, version)});
    for (const ServiceTypeIndex receiver : table.receivers(public_name)) {
      route.rings.push_back(state->ring_of_type[receiver]);
    }
    state->send_routes.emplace(std::string(table.to_internal(state->type, public_name)), std::move(route));
  }
  state->generation = reply.routing_generation;
  std::lock_guard lock(loading_);
  current_.store(state.get(), std::memory_order_release);
  history_.push_back(std::move(state));
  return {};
}

Result<void> RoutingCache::refresh(std::uint64_t generation, const DaemonLink& daemon) {
  if (generation == current().generation) return {};
  Result<control::RoutingReply> reply = daemon.fetch_routing();
  if (!reply) return reply.error();
  return load(reply.value());
}

Result<const SendRoute*> RoutingCache::command_route(std::string_view name) const {
  const RoutingState& state = current();
  const auto found = state.send_routes.find(name);
  if (found == state.send_routes.end() || found->second.rings.empty()) {
    Result<RoutingTable::Route> route = state.config.routing.route_send(state.type, name, false);
    return route ? Error{ErrorCode::internal, "no send route for a routable name"} : route.error();
  }
  return &found->second;
}

Result<const SendRoute*> RoutingCache::reply_route(std::string_view outcome, std::string_view requester) const {
  const RoutingState& state = current();
  const auto found = state.send_routes.find(outcome);
  if (found == state.send_routes.end()) {
    Result<RoutingTable::Route> route = state.config.routing.route_send(state.type, outcome, true);
    return route ? Error{ErrorCode::internal, "no send route for a routable name"} : route.error();
  }
  // The same rule as lint's: a service receives what it declares, replies included.
  const std::optional<ServiceTypeIndex> requester_type = state.config.find_service(requester);
  if (!requester_type || !state.config.routing.receives_name(*requester_type, found->second.public_name)) {
    return Error{ErrorCode::unknown_message, "service type '" + std::string(requester) + "' does not receive " +
                                                 quote_name(found->second.public_name) +
                                                 ", so it cannot be its reply; add it to the receives of '" +
                                                 std::string(requester) + "'"};
  }
  return &found->second;
}

}  // namespace exobus::client
