#include "exobus/routing_table.hpp"

#include <algorithm>

#include "exobus/message_name.hpp"
#include "exobus/message_version.hpp"

namespace exobus {

namespace {

const MessageVersions kVersionOneAlone{{}, {kDefaultVersion}, kDefaultVersion};

// The schemas one type gives for one name at one version: its own for that version, else
// its schema for every version (or none).
std::vector<const Schema*> schemas_of_type(const ServiceTypeConfig& config, const std::string& internal_name,
                                           std::optional<double> version) {
  const Schema* general = nullptr;
  const Schema* specific = nullptr;
  for (const MessageSchema& schema : config.schemas) {
    if (schema.name != internal_name) continue;
    if (!schema.version) general = &schema.schema;
    if (version && schema.version == version) specific = &schema.schema;
  }
  if (specific != nullptr) return {specific};
  if (general != nullptr) return {general};
  return {};
}

}  // namespace

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
    for (const MessageVersions& versions : config.versions) {
      type.versions.try_emplace(public_of(versions.name), versions);
    }
    types_.push_back(std::move(type));
  }
  // Schemas need every type read first: a version one type gives a schema of its own
  // takes the other types' schemas for every version too.
  NameMap<std::vector<double>> specific_versions;
  for (ServiceTypeIndex index = 0; index < types.size(); ++index) {
    for (const MessageSchema& schema : types[index].schemas) {
      if (!schema.version) continue;
      std::vector<double>& versions = specific_versions[std::string(to_public(index, schema.name))];
      if (std::find(versions.begin(), versions.end(), *schema.version) == versions.end()) {
        versions.push_back(*schema.version);
      }
    }
  }
  for (ServiceTypeIndex index = 0; index < types.size(); ++index) {
    const ServiceTypeConfig& config = types[index];
    NameSet named;  // each name of this type once, whatever its number of schemas
    for (const MessageSchema& schema : config.schemas) {
      if (!named.insert(schema.name).second) continue;
      const std::string public_name(to_public(index, schema.name));
      NameSchemas& entry = schemas_[public_name];
      for (const Schema* general : schemas_of_type(config, schema.name, std::nullopt)) {
        entry.other_versions.push_back(*general);
      }
      for (const double version : specific_versions[public_name]) {
        auto slot = std::find_if(entry.by_version.begin(), entry.by_version.end(),
                                 [&](const auto& pair) { return pair.first == version; });
        if (slot == entry.by_version.end()) slot = entry.by_version.insert(entry.by_version.end(), {version, {}});
        for (const Schema* applies : schemas_of_type(config, schema.name, version)) slot->second.push_back(*applies);
      }
    }
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

bool RoutingTable::receives_name(ServiceTypeIndex type, std::string_view public_name) const noexcept {
  const std::span<const ServiceTypeIndex> types = receivers(public_name);
  return std::binary_search(types.begin(), types.end(), type);
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

std::span<const Schema> RoutingTable::schemas(std::string_view public_name, double version) const noexcept {
  const auto found = schemas_.find(public_name);
  if (found == schemas_.end()) return {};
  for (const auto& [specific, schemas] : found->second.by_version) {
    if (specific == version) return schemas;
  }
  return found->second.other_versions;
}

const MessageVersions& RoutingTable::versions(ServiceTypeIndex type, std::string_view public_name) const noexcept {
  if (type >= types_.size()) return kVersionOneAlone;
  const auto found = types_[type].versions.find(public_name);
  return found == types_[type].versions.end() ? kVersionOneAlone : found->second;
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
