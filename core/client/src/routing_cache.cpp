#include "routing_cache.hpp"

#include "exobus/message_name.hpp"

namespace exobus::client {

std::string_view RoutingState::type_name(std::uint16_t index) const {
  return index < type_names.size() ? std::string_view(type_names[index]) : std::string_view();
}

Result<void> RoutingCache::load(const control::RoutingReply& reply, const shm::BusMemory& memory) {
  Result<ApplicationConfig> config = load_application_config(reply.config_file);
  if (!config) return config.error();
  static std::atomic<std::uint64_t> serials{0};
  auto state = std::make_unique<RoutingState>();
  state->serial = serials.fetch_add(1, std::memory_order_relaxed) + 1;
  state->config = std::move(config).value();
  const std::optional<ServiceTypeIndex> type = state->config.find_service(service_type_);
  if (!type) return Error{ErrorCode::config_error, "service type '" + service_type_ + "' left the configuration"};
  state->type = *type;
  const std::uint32_t slots = memory.type_slots();
  state->config_index.assign(slots, std::nullopt);
  state->type_names.assign(slots, {});
  state->link_to.assign(slots, nullptr);
  for (const auto& [name, index] : reply.types) {
    if (index >= slots) return Error{ErrorCode::protocol, "the daemon names a type index beyond the bus's"};
    state->type_names[index] = name;
    state->config_index[index] = state->config.find_service(name);
  }
  const auto own = reply.types.find(service_type_);
  if (own == reply.types.end()) return Error{ErrorCode::protocol, "the daemon's routing lacks this service's type"};
  state->own_index = own->second;
  for (std::uint32_t index = 0; index < memory.link_slots(); ++index) {
    shm::Link* link = memory.link(index);
    if (link == nullptr) continue;
    if (link->sender() == state->own_index && link->receiver() < slots) state->link_to[link->receiver()] = link;
    if (link->receiver() == state->own_index) state->incoming.push_back(link);
  }
  std::vector<std::optional<std::uint16_t>> index_of_config(state->config.services.size());
  for (std::uint16_t index = 0; index < slots; ++index) {
    if (state->config_index[index]) index_of_config[*state->config_index[index]] = index;
  }
  const RoutingTable& table = state->config.routing;
  for (const std::string& public_name : table.sends(state->type)) {
    const MessageVersions& versions = table.versions(state->type, public_name);
    SendRoute route{public_name, shm::outcome_hash(public_name), {}, {}, versions.default_version};
    for (const double version : versions.known) route.versions.push_back({version, table.schemas(public_name, version)});
    for (const ServiceTypeIndex receiver : table.receivers(public_name)) {
      const std::optional<std::uint16_t> index = index_of_config[receiver];
      shm::Link* link = index ? state->link_to[*index] : nullptr;
      if (link == nullptr) {
        return Error{ErrorCode::config_error, "the daemon has no link from '" + service_type_ + "' to '" +
                                                  state->config.services[receiver].name +
                                                  "' yet; send exobusd SIGHUP after editing the configuration"};
      }
      route.destinations.push_back({link, shm::kTypeChannel});
    }
    state->send_routes.emplace(std::string(table.to_internal(state->type, public_name)), std::move(route));
  }
  state->generation = reply.routing_generation;
  std::lock_guard lock(loading_);
  current_.store(state.get(), std::memory_order_release);
  history_.push_back(std::move(state));
  return {};
}

Result<void> RoutingCache::refresh(std::uint64_t generation, DaemonLink& daemon, shm::BusMemory& memory) {
  if (generation == current().generation) return {};
  Result<RoutingUpdate> update = daemon.fetch_routing();
  if (!update) return update.error();
  if (Result<void> mapped = memory.attach_more(update.value().memory.grants()); !mapped) return mapped.error();
  return load(update.value().reply, memory);
}

Result<const SendRoute*> RoutingCache::command_route(std::string_view name) const {
  const RoutingState& state = current();
  const auto found = state.send_routes.find(name);
  if (found == state.send_routes.end() || found->second.destinations.empty()) {
    Result<RoutingTable::Route> route = state.config.routing.route_send(state.type, name, false);
    return route ? Error{ErrorCode::internal, "no send route for a routable name"} : route.error();
  }
  return &found->second;
}

Result<const SendRoute*> RoutingCache::reply_route(std::string_view outcome, std::uint16_t requester) const {
  const RoutingState& state = current();
  const auto found = state.send_routes.find(outcome);
  if (found == state.send_routes.end()) {
    Result<RoutingTable::Route> route = state.config.routing.route_send(state.type, outcome, true);
    return route ? Error{ErrorCode::internal, "no send route for a routable name"} : route.error();
  }
  // The same rule as lint's: a service receives what it declares, replies included.
  const std::string requester_name(state.type_name(requester));
  const std::optional<ServiceTypeIndex> requester_type =
      requester < state.config_index.size() ? state.config_index[requester] : std::nullopt;
  if (!requester_type || !state.config.routing.receives_name(*requester_type, found->second.public_name)) {
    return Error{ErrorCode::unknown_message, "service type '" + requester_name + "' does not receive " +
                                                 quote_name(found->second.public_name) +
                                                 ", so it cannot be its reply; add it to the receives of '" +
                                                 requester_name + "'"};
  }
  return &found->second;
}

}  // namespace exobus::client
