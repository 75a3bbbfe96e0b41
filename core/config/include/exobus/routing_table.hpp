#pragma once

// Who receives what. Built once from the service type declarations; read-only afterwards,
// so lookups need no locking.
//
// The table speaks public names. A service type with message translations declares and uses
// internal names; to_public() and to_internal() convert at the boundary, so a service
// sending its internal "create" is routed as the public "user.create", and receives
// "user.create" as "create".

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "exobus/error.hpp"
#include "exobus/name_map.hpp"
#include "exobus/schema.hpp"
#include "exobus/service_config.hpp"

namespace exobus {

// Position of a service type in ApplicationConfig::services (file order).
using ServiceTypeIndex = std::uint32_t;

class RoutingTable {
 public:
  struct Route {
    std::string_view public_name;
    // The receiving service types, in index order. Fan-out delivers to each of them.
    std::span<const ServiceTypeIndex> receivers;
  };

  RoutingTable() = default;
  // Expects declarations as the config loader accepts them (valid names, no conflicting
  // translations); for conflicting input the first declaration wins.
  explicit RoutingTable(std::span<const ServiceTypeConfig> types);

  std::size_t type_count() const noexcept { return types_.size(); }

  // Receivers of a public name, in index order; empty if nobody receives it.
  std::span<const ServiceTypeIndex> receivers(std::string_view public_name) const noexcept;

  // Name conversion for one type; a name without a translation is returned unchanged
  // (the view then refers to the argument).
  std::string_view to_public(ServiceTypeIndex type, std::string_view internal_name) const noexcept;
  std::string_view to_internal(ServiceTypeIndex type, std::string_view public_name) const noexcept;

  // Whether `type` declared the public name in its sends / its receives.
  bool may_send(ServiceTypeIndex type, std::string_view public_name) const noexcept;
  bool receives_name(ServiceTypeIndex type, std::string_view public_name) const noexcept;

  // The check made on every send by `type` of a name it uses internally.
  // ErrorCode::not_declared if the name is not in its sends; for a command,
  // ErrorCode::unknown_message if no type receives it. A reply with no subscribed type
  // is still routable (it goes to the requester's reply inbox), so its route may have no
  // receivers.
  Result<Route> route_send(ServiceTypeIndex type, std::string_view internal_name, bool is_reply) const;

  // Schemas a payload of the public name at `version` must satisfy: every type's that gives
  // one for the name, the one for that version where the type has one, else its schema for
  // every version.
  std::span<const Schema> schemas(std::string_view public_name, double version) const noexcept;

  // The versions `type` declares for a public name it sends or receives (version 1 alone
  // when it declares none).
  const MessageVersions& versions(ServiceTypeIndex type, std::string_view public_name) const noexcept;

  // Public names a type sends / receives, in declaration order.
  std::span<const std::string> sends(ServiceTypeIndex type) const noexcept;
  std::span<const std::string> receives(ServiceTypeIndex type) const noexcept;

 private:
  struct Type {
    std::string name;
    std::string config_file;
    NameMap<std::string> to_public;
    NameMap<std::string> to_internal;
    std::vector<std::string> sends;
    std::vector<std::string> receives;
    NameSet sends_set;
    NameMap<MessageVersions> versions;  // by public name; names without an entry know version 1
  };
  // The schemas of one public name: for versions some type gives a schema of its own, and
  // for every other version.
  struct NameSchemas {
    std::vector<std::pair<double, std::vector<Schema>>> by_version;
    std::vector<Schema> other_versions;
  };

  std::vector<Type> types_;
  NameMap<std::vector<ServiceTypeIndex>> receivers_;
  NameMap<NameSchemas> schemas_;
};

}  // namespace exobus
