#pragma once
// The routing a sender and a receiver need, kept per configuration generation. A service
// loads the same application.yml the daemon serves; the directory holds the daemon's
// routing generation, and a sender compares it with its own on every send (one acquire
// load) and reloads when it moved, mapping the links the reload added. Reloads are rare, so
// old states are kept (never freed while the service lives) and the current one is swapped
// in with one atomic pointer: senders never lock.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "daemon_link.hpp"
#include "exobus/config.hpp"
#include "exobus/name_map.hpp"
#include "exobus/shm/data_plane.hpp"

namespace exobus::client {

// What a send of one of this type's declared names needs, found with one lookup by the name
// the service uses for it.
struct SendRoute {
  // One version the sender declares, and what a payload of it must satisfy.
  struct Version {
    double version;
    std::span<const Schema> schemas;
  };
  std::string public_name;
  std::uint64_t outcome_hash = 0;  // of public_name, where replies under it are counted (reply_outcomes.hpp)
  std::vector<shm::Destination> destinations;  // the receiving types' links; none: a reply outcome only
  std::vector<Version> versions;     // ascending
  double default_version = 1.0;

  // The declared version, or null.
  const Version* find(double version) const {
    for (const Version& known : versions) {
      if (known.version == version) return &known;
    }
    return nullptr;
  }
};

struct RoutingState {
  ApplicationConfig config;
  ServiceTypeIndex type = 0;                // this service's type, in the file
  std::uint16_t own_index = 0;              // and in the bus's memory
  NameMap<SendRoute> send_routes;           // by the service's own (internal) name
  // By type index in the bus's memory: the type's place in the file, and the link from this
  // type to it (null: it is not a receiver or requester of this type's).
  std::vector<std::optional<ServiceTypeIndex>> config_index;
  std::vector<std::string> type_names;
  std::vector<shm::Link*> link_to;
  std::vector<shm::Link*> incoming;  // every link to this type, in index order
  std::uint64_t generation = 0;
  // Unique among every state any service of this process ever loaded, from 1: what caches
  // of routes and verdicts are keyed by, since a freed state's address may be reused.
  std::uint64_t serial = 0;

  const ServiceTypeConfig& own_type() const { return config.services[type]; }
  // A type's name, by its index in the bus's memory; empty for an unknown one.
  std::string_view type_name(std::uint16_t index) const;
};

class RoutingCache {
 public:
  explicit RoutingCache(std::string service_type) : service_type_(std::move(service_type)) {}

  // Loads the file the reply names, over the links `memory` maps, and makes it the current
  // state.
  Result<void> load(const control::RoutingReply& reply, const shm::BusMemory& memory);
  // Reloads from the daemon when `generation` (the directory's) is not the current state's,
  // mapping the memory it grants first.
  Result<void> refresh(std::uint64_t generation, DaemonLink& daemon, shm::BusMemory& memory);
  // Valid once load() succeeded, for the life of the cache.
  const RoutingState& current() const { return *current_.load(std::memory_order_acquire); }
  // The route of a name this service sends as a command; for any other name the routing
  // table's error (not declared, no receiver).
  Result<const SendRoute*> command_route(std::string_view name) const;
  // The route of an outcome this service sends as a reply to `requester` (a type index in
  // the bus's memory): the outcome must be in this service's sends and in the requester's
  // receives.
  Result<const SendRoute*> reply_route(std::string_view outcome, std::uint16_t requester) const;

 private:
  std::string service_type_;
  std::mutex loading_;  // serialises load(); senders only read current_
  std::vector<std::unique_ptr<RoutingState>> history_;
  // Release store in load() pairs with the acquire in current(): a state is complete before
  // anyone sees it.
  std::atomic<const RoutingState*> current_{nullptr};
};

}  // namespace exobus::client
