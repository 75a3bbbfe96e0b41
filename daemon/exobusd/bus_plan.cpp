#include "bus_plan.hpp"

#include <algorithm>
#include <bit>

namespace exobus::daemon {

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

}  // namespace

BusPlan plan_bus(const ApplicationConfig& config) {
  BusPlan plan;
  plan.type_slots = static_cast<std::uint32_t>(config.services.size()) + kSpareServiceTypes;
  plan.instance_slots = config.bus.max_instances + 1;
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
  // Types that left the configuration keep their ring: what waits there stays for them.
  std::vector<bool> taken(plan.type_slots, false);
  for (const auto& [name, ring] : plan.type_rings) taken[ring] = true;
  std::uint16_t next_spare = 0;
  for (const ServiceTypeConfig& type : config.services) {
    if (plan.type_rings.contains(type.name)) continue;
    while (next_spare < plan.type_slots && taken[next_spare]) ++next_spare;
    if (next_spare == plan.type_slots) {
      return Error{ErrorCode::config_error,
                   "no spare queue left for new service type '" + type.name +
                       "'; restart exobusd (with services stopped) to lay out the bus anew"};
    }
    plan.type_rings[type.name] = next_spare;
    taken[next_spare] = true;
  }
  return {};
}

}  // namespace exobus::daemon
