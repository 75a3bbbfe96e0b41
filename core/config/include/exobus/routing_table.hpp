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

  // Whether `type` declared the public name in its sends.
  bool may_send(ServiceTypeIndex type, std::string_view public_name) const noexcept;

  // The check made on every send by `type` of a name it uses internally.
  // ErrorCode::not_declared if the name is not in its sends; for a command,
  // ErrorCode::unknown_message if no type receives it. A reply with no subscribed type
  // is still routable (it goes to the requester's reply inbox), so its route may have no
  // receivers.
  Result<Route> route_send(ServiceTypeIndex type, std::string_view internal_name, bool is_reply) const;

  // Schemas declared for a public name by any type; a payload must satisfy all of them.
  std::span<const Schema> schemas(std::string_view public_name) const noexcept;

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
  };

  std::vector<Type> types_;
  NameMap<std::vector<ServiceTypeIndex>> receivers_;
  NameMap<std::vector<Schema>> schemas_;
};

}  // namespace exobus
