#pragma once
// How a configuration becomes a data segment: which ring serves which service type, its
// dead letters and each instance's reply inbox. Rings are numbered
//   [0, T)        service type queues (T = configured types + spare ones for reloads)
//   [T, 2T)       their dead-letter queues
//   [2T, 2T + I)  reply inboxes, one per instance slot (slot 0 is the daemon itself)
// A type keeps its ring for the life of the segment, so a reload that adds types only
// claims spare rings and never moves a ring a running service uses.
#include <cstdint>
#include <map>
#include <string>

#include "exobus/config.hpp"
#include "exobus/shm/bus_layout.hpp"

namespace exobus {

inline constexpr std::uint32_t kSpareServiceTypes = 8;
inline constexpr std::uint32_t kLanesPerInstance = 8;
static_assert(shm::kMaxRings * kLanesPerInstance <= shm::kMaxLanes, "a plan within the ring limit has lanes enough");
inline constexpr std::uint32_t kDeadLetterCapacity = 1024;

struct BusPlan {
  std::uint32_t type_slots = 0;                     // T
  std::uint32_t instance_slots = 0;                 // I, including the daemon's slot 0
  std::map<std::string, std::uint16_t> type_rings;  // service type name -> its ring

  std::uint16_t dead_letter_ring(std::uint16_t type_ring) const {
    return static_cast<std::uint16_t>(type_slots + type_ring);
  }
  std::uint16_t inbox_ring(std::uint32_t instance) const {
    return static_cast<std::uint16_t>(2 * type_slots + instance);
  }
  shm::LayoutSpec layout;
};

// config_error when the service types and instance slots need more rings than a segment
// holds (shm::kMaxRings), naming the largest max-instances that fits.
Result<BusPlan> plan_bus(const ApplicationConfig& config);

// After a reload: keep the rings of known types, give new types spare rings. A ring is laid
// out once, with its capacity, ack timeout and delivery limit, so fails (config_error, the
// running plan untouched) when a known type changed one of them, when a new type asks for
// other ones than the spare rings have, or when the spares run out.
Result<void> replan_types(BusPlan& plan, const ApplicationConfig& config);

}  // namespace exobus
