#pragma once
// How a configuration becomes a bus's memory (shm/bus_memory.hpp): a type index and a
// tenant shape per service type, and a link per pair of types that talk, in either
// direction (the one that sends commands or events, the other replies on the same link).
// Every link has a type channel (the receiver's queue capacity) and a reply channel per
// instance slot of the receiver, so its shape never changes when routes change.
//
// Indices are kept for the life of the memory: a reload that adds types or links only
// claims free indices and never moves what a running service uses, and a restarted daemon
// takes them from the directory (plan_of_memory), not from the file's order.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "exobus/config.hpp"
#include "exobus/shm/bus_memory.hpp"

namespace exobus {

inline constexpr std::uint32_t kSpareServiceTypes = 8;
inline constexpr std::uint32_t kLanesPerInstance = 8;
inline constexpr std::uint32_t kDeadLetterCapacity = 1024;
inline constexpr std::uint32_t kMaxLinkSlots = 4096;
// Memory objects one registration may grant: the control protocol's descriptors per reply.
inline constexpr std::size_t kMaxGrantedObjects = 250;

struct BusPlan {
  std::map<std::string, std::uint16_t> types;                     // service type name -> type index
  std::map<std::pair<std::uint16_t, std::uint16_t>, std::uint32_t> links;  // (sender, receiver) -> link
  shm::BusShape memory;  // every type and link in use, and the slots for more

  std::optional<std::uint16_t> type_index(const std::string& name) const;
  std::optional<std::uint32_t> link_between(std::uint16_t sender, std::uint16_t receiver) const;
  const shm::BusShape::Type* type(std::uint16_t index) const;
  // The links with `type` at either end.
  std::vector<std::uint32_t> links_of(std::uint16_t type) const;
};

// config_error when the configuration asks for more than a bus holds.
Result<BusPlan> plan_bus(const ApplicationConfig& config);

// The plan of memory laid out before (a restarted daemon): the types and links its
// directory records, with `instance_slots` (the registry's). A configuration goes on top
// with replan().
BusPlan plan_of_memory(const shm::Directory& directory, std::uint32_t instance_slots);

// After a reload: keeps the types and links known, gives new ones free indices. A type's
// memory is laid out once, so fails (config_error, the running plan untouched) when a
// known type changed its queue capacity, ack timeout, delivery limit or instance count,
// raised its prefetch above what it was laid out with, or when the slots run out.
// `added` receives the types and links to lay out.
struct PlanAdditions {
  std::vector<shm::BusShape::Type> types;
  std::vector<shm::BusShape::LinkEntry> links;
};
Result<PlanAdditions> replan(BusPlan& plan, const ApplicationConfig& config);

}  // namespace exobus
