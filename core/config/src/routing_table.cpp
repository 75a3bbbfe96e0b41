#include "exobus/routing_table.hpp"

#include "exobus/message_name.hpp"

namespace exobus {

RoutingTable::RoutingTable(std::span<const ServiceTypeConfig> types) {
  types_.reserve(types.size());
  for (ServiceTypeIndex index = 0; index < types.size(); ++index) {
    const ServiceTypeConfig& config = types[index];
    Type type;
    type.name = config.name;
    type.config_file = config.config_file.string();
    for (const MessageTranslation& translation : config.translations) {
      type.to_public.try_emplace(translation.internal_name, translation.public_name);
      type.to_internal.try_emplace(translation.public_name, translation.internal_name);
    }
    const auto public_of = [&type](const std::string& internal) {
      const auto found = type.to_public.find(internal);
      return found == type.to_public.end() ? internal : found->second;
    };
    for (const std::string& name : config.sends) {
      std::string public_name = public_of(name);
      if (type.sends_set.insert(public_name).second) type.sends.push_back(std::move(public_name));
    }
    for (const std::string& name : config.receives) {
      std::string public_name = public_of(name);
      auto& receivers = receivers_[public_name];
      // Types are visited in index order, so checking the last entry keeps each list
      // sorted and free of duplicates.
      if (!receivers.empty() && receivers.back() == index) continue;
      receivers.push_back(index);
      type.receives.push_back(std::move(public_name));
    }
    for (const MessageSchema& schema : config.schemas) {
      schemas_[public_of(schema.name)].push_back(schema.schema);
    }
    types_.push_back(std::move(type));
  }
}

std::span<const ServiceTypeIndex> RoutingTable::receivers(std::string_view public_name) const noexcept {
  const auto found = receivers_.find(public_name);
  if (found == receivers_.end()) return {};
  return found->second;
}

std::string_view RoutingTable::to_public(ServiceTypeIndex type, std::string_view internal_name) const noexcept {
  if (type >= types_.size()) return internal_name;
  const auto& map = types_[type].to_public;
  const auto found = map.find(internal_name);
  return found == map.end() ? internal_name : std::string_view(found->second);
}

std::string_view RoutingTable::to_internal(ServiceTypeIndex type, std::string_view public_name) const noexcept {
  if (type >= types_.size()) return public_name;
  const auto& map = types_[type].to_internal;
  if (map.empty()) return public_name;  // no translations: skip hashing the name
  const auto found = map.find(public_name);
  return found == map.end() ? public_name : std::string_view(found->second);
}

bool RoutingTable::may_send(ServiceTypeIndex type, std::string_view public_name) const noexcept {
  return type < types_.size() && types_[type].sends_set.contains(public_name);
}

Result<RoutingTable::Route> RoutingTable::route_send(ServiceTypeIndex type, std::string_view internal_name,
                                                     bool is_reply) const {
  if (type >= types_.size()) {
    return Error{ErrorCode::internal, "service type index " + std::to_string(type) + " is out of range"};
  }
  const Type& sender = types_[type];
  const std::string_view public_name = to_public(type, internal_name);
  if (!sender.sends_set.contains(public_name)) {
    return Error{ErrorCode::not_declared, "service '" + sender.name + "' sends " + quote_name(internal_name) +
                                              " but does not declare it; add it to sends in " + sender.config_file};
  }
  const auto targets = receivers(public_name);
  if (targets.empty() && !is_reply) {
    return Error{ErrorCode::unknown_message, "no service type receives " + quote_name(public_name) + " (sent by '" +
                                                 sender.name +
                                                 "'); add it to the receives of the service that handles it"};
  }
  return Route{public_name, targets};
}

std::span<const Schema> RoutingTable::schemas(std::string_view public_name) const noexcept {
  const auto found = schemas_.find(public_name);
  if (found == schemas_.end()) return {};
  return found->second;
}

std::span<const std::string> RoutingTable::sends(ServiceTypeIndex type) const noexcept {
  if (type >= types_.size()) return {};
  return types_[type].sends;
}

std::span<const std::string> RoutingTable::receives(ServiceTypeIndex type) const noexcept {
  if (type >= types_.size()) return {};
  return types_[type].receives;
}

}  // namespace exobus
