#pragma once

// Loading an application's configuration (application.yml and the config.yml of each
// service it lists). docs/config.md is the reference for every key, default and range.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "exobus/error.hpp"
#include "exobus/routing_table.hpp"
#include "exobus/service_config.hpp"

namespace exobus {

// `count` chunks of `size` bytes each.
struct SizeClass {
  std::uint32_t size;   // power of two, 256 B .. 1 MiB
  std::uint32_t count;  // at least 1
};

// Where exobusd serves its Prometheus metrics: an IPv4 address (dotted, as inet_pton reads
// it) and a TCP port; port 0 lets the kernel choose one, which `exobus status` then shows.
struct MetricsAddress {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;

  std::string text() const { return host + ":" + std::to_string(port); }
};

struct BusConfig {
  // Permission bits of the shared-memory segments. Owner read/write required; never any
  // bit for "other": a world-accessible bus would let any local user read every message.
  std::uint32_t segment_mode = 0660;
  // The group (a name or a numeric gid) that owns the segments, the control socket and
  // its directory; empty: the daemon's own group. The group bits of segment_mode are what
  // its members may do: with read and write they may run service instances.
  std::string group;
  std::uint32_t max_instances = 64;           // 1..4000, every service type together
  // Quotas, so that one user cannot take what the others need (docs/security.md):
  // instances one user (uid) may run at once, over every type; unset: max_instances, no
  // limit of its own. At most max_instances.
  std::optional<std::uint32_t> max_instances_per_user;
  // Control connections one user may hold open that are not a registered instance's
  // (status, commands, registrations under way); 1..65536.
  std::uint32_t max_connections_per_user = 256;
  // How long a control connection may stay without registering or sending a request before
  // the daemon closes it; 100..3600000.
  std::uint32_t registration_timeout_ms = 5000;
  std::uint32_t reply_inbox_capacity = 1024;  // power of two, 16..1048576
  // The metrics endpoint; unset: exobusd serves no metrics.
  std::optional<MetricsAddress> metrics_address;
  // Strictly increasing sizes. The largest size bounds the encoded message.
  std::vector<SizeClass> size_classes = {{256, 8192}, {4096, 2048}, {65536, 256}, {1048576, 16}};

  std::uint32_t instances_per_user() const { return max_instances_per_user.value_or(max_instances); }
};

// The instance slots of a service type: its own max-instances, or the bus's.
inline std::uint32_t max_instances_of(const ServiceTypeConfig& type, const BusConfig& bus) {
  return type.max_instances.value_or(bus.max_instances);
}

struct ApplicationConfig {
  std::string name;
  std::filesystem::path file;  // the application.yml this was loaded from
  BusConfig bus;
  // In file order; a type's position is its ServiceTypeIndex.
  std::vector<ServiceTypeConfig> services;
  RoutingTable routing;

  std::optional<ServiceTypeIndex> find_service(std::string_view name) const noexcept;
};

// Reads `application_file` and every service config it names, compiles the schemas and
// builds the routing table. Any problem is ErrorCode::config_error whose message names the
// file and line and says what to change.
Result<ApplicationConfig> load_application_config(const std::filesystem::path& application_file);

}  // namespace exobus
