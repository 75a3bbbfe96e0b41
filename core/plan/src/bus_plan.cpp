#include "exobus/bus_plan.hpp"

#include <algorithm>
#include <bit>

namespace exobus {

namespace {

shm::RingSpec type_ring_spec(const ServiceTypeConfig& type, std::uint16_t dead_letters) {
  return {type.queue_capacity, type.ack_timeout_ms, static_cast<std::uint8_t>(type.delivery_limit), dead_letters};
}

// Spare rings get the largest configured capacity and the defaults of a service config.
shm::RingSpec spare_ring_spec(const ApplicationConfig& config, std::uint16_t dead_letters) {
  ServiceTypeConfig defaults;
  for (const ServiceTypeConfig& type : config.services) {
    defaults.queue_capacity = std::max(defaults.queue_capacity, type.queue_capacity);
  }
  return type_ring_spec(defaults, dead_letters);
}

// What differs between the ring a type has and the one its configuration asks for, or
// nothing. A spare ring may hold more than a new type asks for (spares have the largest
// capacity of the bus), never less.
std::string ring_difference(const shm::RingSpec& has, const shm::RingSpec& wants, bool spare) {
  if (spare ? has.capacity < wants.capacity : has.capacity != wants.capacity) {
    return "queue-capacity " + std::to_string(has.capacity) + " (asks for " + std::to_string(wants.capacity) + ")";
  }
  if (has.lease_ms != wants.lease_ms) {
    return "ack-timeout-ms " + std::to_string(has.lease_ms) + " (asks for " + std::to_string(wants.lease_ms) + ")";
  }
  if (has.delivery_limit != wants.delivery_limit) {
    return "delivery-limit " + std::to_string(has.delivery_limit) + " (asks for " +
           std::to_string(wants.delivery_limit) + ")";
  }
  return {};
}

}  // namespace

Result<BusPlan> plan_bus(const ApplicationConfig& config) {
  BusPlan plan;
  plan.type_slots = static_cast<std::uint32_t>(config.services.size()) + kSpareServiceTypes;
  plan.instance_slots = config.bus.max_instances + 1;
  // Rings: a queue and a dead-letter queue per type slot, an inbox per instance slot. (Lanes
  // then fit too: see kLanesPerInstance.)
  const std::uint64_t rings = 2 * std::uint64_t{plan.type_slots} + plan.instance_slots;
  if (rings > shm::kMaxRings) {
    const std::uint64_t most = shm::kMaxRings - std::min<std::uint64_t>(shm::kMaxRings, 2 * plan.type_slots + 1);
    return Error{ErrorCode::config_error,
                 "bus.max-instances " + std::to_string(config.bus.max_instances) + " with " +
                     std::to_string(config.services.size()) + " service types needs " + std::to_string(rings) +
                     " queues, and a bus holds " + std::to_string(shm::kMaxRings) + "; lower bus.max-instances to " +
                     std::to_string(most) + " or fewer, or split the application into several buses"};
  }
  std::uint32_t leases = 1;
  for (std::uint32_t t = 0; t < plan.type_slots; ++t) {
    const std::uint16_t dead_letters = plan.dead_letter_ring(static_cast<std::uint16_t>(t));
    if (t < config.services.size()) {
      const ServiceTypeConfig& type = config.services[t];
      plan.type_rings[type.name] = static_cast<std::uint16_t>(t);
      plan.layout.rings.push_back(type_ring_spec(type, dead_letters));
      leases = std::max(leases, type.prefetch);
    } else {
      plan.layout.rings.push_back(spare_ring_spec(config, dead_letters));
    }
  }
  // Dead-letter queues are terminal: nothing is redelivered from them by itself.
  for (std::uint32_t t = 0; t < plan.type_slots; ++t) {
    plan.layout.rings.push_back({kDeadLetterCapacity, 30000, 255, shm::kNoRing});
  }
  for (std::uint32_t i = 0; i < plan.instance_slots; ++i) {
    plan.layout.rings.push_back({std::bit_ceil(config.bus.reply_inbox_capacity), 30000, 255, shm::kNoRing});
  }
  for (const SizeClass& size_class : config.bus.size_classes) {
    plan.layout.size_classes.push_back({size_class.size, size_class.count, 0, 0, 0});
  }
  plan.layout.max_instances = plan.instance_slots;
  plan.layout.lanes_per_instance = kLanesPerInstance;
  plan.layout.leases_per_lane = leases;
  return plan;
}

Result<void> replan_types(BusPlan& plan, const ApplicationConfig& config) {
  constexpr const char* kRestart =
      "; a running bus keeps the queues it was laid out with: restart exobusd with "
      "--reset (services stopped, queued messages discarded) to lay it out anew";
  BusPlan next = plan;
  // Types that left the configuration keep their ring: what waits there stays for them.
  std::vector<bool> taken(next.type_slots, false);
  for (const auto& [name, ring] : next.type_rings) taken[ring] = true;
  std::uint16_t next_spare = 0;
  for (const ServiceTypeConfig& type : config.services) {
    const auto known = next.type_rings.find(type.name);
    const bool spare = known == next.type_rings.end();
    std::uint16_t ring = 0;
    if (!spare) {
      ring = known->second;
    } else {
      while (next_spare < next.type_slots && taken[next_spare]) ++next_spare;
      if (next_spare == next.type_slots) {
        return Error{ErrorCode::config_error,
                     "no spare queue left for new service type '" + type.name + "'" + kRestart};
      }
      ring = next_spare;
      next.type_rings[type.name] = ring;
      taken[ring] = true;
    }
    const std::string difference =
        ring_difference(next.layout.rings[ring], type_ring_spec(type, next.dead_letter_ring(ring)), spare);
    if (!difference.empty()) {
      return Error{ErrorCode::config_error,
                   "the queue of service type '" + type.name + "' has " + difference + kRestart};
    }
  }
  plan = std::move(next);
  return {};
}

}  // namespace exobus
