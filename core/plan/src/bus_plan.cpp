#include "exobus/bus_plan.hpp"

#include <algorithm>
#include <bit>
#include <set>

namespace exobus {

namespace {

constexpr const char* kRestart =
    "; a running bus keeps the memory it was laid out with: restart exobusd with --reset (services "
    "stopped, queued messages discarded) to lay it out anew";

std::uint32_t ring_capacity(std::uint64_t wanted) {
  return static_cast<std::uint32_t>(std::bit_ceil(std::clamp<std::uint64_t>(wanted, 2, 1u << 24)));
}

shm::TenantShape tenant_shape(const ServiceTypeConfig& type, const BusConfig& bus) {
  shm::TenantShape shape;
  // The type's own quota of instances: its instance records and lanes, and (link_shape) a
  // reply channel per instance on every link towards it, so its memory grows with it alone.
  shape.instances = max_instances_of(type, bus);
  shape.lanes_per_instance = kLanesPerInstance;
  shape.leases_per_lane = type.prefetch;
  // Room for every lease of the type to be released at once (commands and replies).
  shape.retry_capacity =
      ring_capacity(std::max<std::uint64_t>(type.queue_capacity, 2 * std::uint64_t{shape.instances} * type.prefetch));
  shape.dead_letter_capacity = kDeadLetterCapacity;
  shape.lease_ms = type.ack_timeout_ms;
  shape.delivery_limit = type.delivery_limit;
  return shape;
}

std::vector<shm::SizeClass> size_classes_of(const BusConfig& bus) {
  std::vector<shm::SizeClass> classes;
  for (const SizeClass& size_class : bus.size_classes) classes.push_back({size_class.size, size_class.count});
  return classes;
}

shm::LinkShape link_shape(std::uint16_t sender, std::uint16_t receiver, const shm::TenantShape& receiving,
                          std::uint32_t queue_capacity, const BusConfig& bus) {
  return {sender, receiver, queue_capacity, receiving.instances, ring_capacity(bus.reply_inbox_capacity),
          size_classes_of(bus)};
}

// The pairs of types (positions in the file) that talk: a sender and a receiving type of
// one of its names, and the same pair the other way for the replies.
std::set<std::pair<std::size_t, std::size_t>> talking_pairs(const ApplicationConfig& config) {
  std::set<std::pair<std::size_t, std::size_t>> pairs;
  for (std::size_t sender = 0; sender < config.services.size(); ++sender) {
    const auto type = static_cast<ServiceTypeIndex>(sender);
    for (const std::string& name : config.routing.sends(type)) {
      for (const ServiceTypeIndex receiver : config.routing.receivers(config.routing.to_public(type, name))) {
        pairs.insert({sender, receiver});
        pairs.insert({receiver, sender});
      }
    }
  }
  return pairs;
}

// What differs between the memory a type has and the one its configuration asks for, or
// nothing.
std::string shape_difference(const shm::TenantShape& has, const shm::TenantShape& wants) {
  const auto differs = [](const char* key, std::uint64_t has_value, std::uint64_t wants_value) {
    return std::string(key) + " " + std::to_string(has_value) + " (asks for " + std::to_string(wants_value) + ")";
  };
  if (has.lease_ms != wants.lease_ms) return differs("ack-timeout-ms", has.lease_ms, wants.lease_ms);
  if (has.delivery_limit != wants.delivery_limit) {
    return differs("delivery-limit", has.delivery_limit, wants.delivery_limit);
  }
  if (has.instances != wants.instances) return differs("max-instances", has.instances, wants.instances);
  if (has.leases_per_lane < wants.leases_per_lane) {
    return differs("prefetch at most", has.leases_per_lane, wants.leases_per_lane);
  }
  return {};
}

std::uint32_t queue_capacity_of(const BusPlan& plan, std::uint16_t receiver) {
  for (const shm::BusShape::LinkEntry& link : plan.memory.links) {
    if (link.shape.receiver == receiver) return link.shape.channel_capacity;
  }
  return 0;
}

}  // namespace

std::optional<std::uint16_t> BusPlan::type_index(const std::string& name) const {
  const auto found = types.find(name);
  if (found == types.end()) return std::nullopt;
  return found->second;
}

std::optional<std::uint32_t> BusPlan::link_between(std::uint16_t sender, std::uint16_t receiver) const {
  const auto found = links.find({sender, receiver});
  if (found == links.end()) return std::nullopt;
  return found->second;
}

const shm::BusShape::Type* BusPlan::type(std::uint16_t index) const {
  for (const shm::BusShape::Type& each : memory.types) {
    if (each.index == index) return &each;
  }
  return nullptr;
}

std::vector<std::uint32_t> BusPlan::links_of(std::uint16_t type) const {
  std::vector<std::uint32_t> found;
  for (const auto& [ends, link] : links) {
    if (ends.first == type || ends.second == type) found.push_back(link);
  }
  return found;
}

Result<BusPlan> plan_bus(const ApplicationConfig& config) {
  BusPlan plan;
  const auto type_slots = static_cast<std::uint32_t>(config.services.size()) + kSpareServiceTypes;
  if (type_slots > 0xfffe) return Error{ErrorCode::config_error, "a bus holds at most 65526 service types"};
  plan.memory.directory.type_slots = type_slots;
  plan.memory.directory.link_slots =
      static_cast<std::uint32_t>(std::min<std::uint64_t>(std::uint64_t{type_slots} * type_slots, kMaxLinkSlots));
  plan.memory.directory.lanes_per_instance = kLanesPerInstance;
  plan.memory.directory.size_classes = size_classes_of(config.bus);
  plan.memory.instance_slots = config.bus.max_instances;
  plan.memory.region_slots = 2 + type_slots + 2 * plan.memory.directory.link_slots;
  // Nothing known yet: every type and link is an addition.
  Result<PlanAdditions> added = replan(plan, config);
  if (!added) return added.error();
  return plan;
}

BusPlan plan_of_memory(const shm::Directory& directory, std::uint32_t instance_slots) {
  BusPlan plan;
  plan.memory.directory.type_slots = directory.type_slots();
  plan.memory.directory.link_slots = directory.link_slots();
  plan.memory.directory.lanes_per_instance = directory.header().lanes_per_instance;
  plan.memory.directory.size_classes = directory.size_classes();
  plan.memory.instance_slots = instance_slots;
  plan.memory.region_slots = 2 + directory.type_slots() + 2 * directory.link_slots();
  for (std::uint32_t index = 0; index < directory.type_slots(); ++index) {
    const auto type = static_cast<std::uint16_t>(index);
    const std::optional<shm::TenantShape> shape = directory.type_shape(type);
    if (!shape) continue;
    const std::string name(directory.type_name(type));
    plan.types[name] = type;
    plan.memory.types.push_back({type, name, *shape});
  }
  for (std::uint32_t index = 0; index < directory.link_slots(); ++index) {
    const std::optional<shm::LinkShape> shape = directory.link_shape(index);
    if (!shape) continue;
    plan.links[{shape->sender, shape->receiver}] = index;
    plan.memory.links.push_back({index, *shape});
  }
  return plan;
}

Result<PlanAdditions> replan(BusPlan& plan, const ApplicationConfig& config) {
  BusPlan next = plan;
  PlanAdditions added;
  const std::vector<shm::SizeClass> classes = size_classes_of(config.bus);
  const bool same_classes = classes.size() == next.memory.directory.size_classes.size() &&
                            std::equal(classes.begin(), classes.end(), next.memory.directory.size_classes.begin(),
                                       [](const shm::SizeClass& a, const shm::SizeClass& b) {
                                         return a.chunk_size == b.chunk_size && a.chunk_count == b.chunk_count;
                                       });
  if (!same_classes) return Error{ErrorCode::config_error, std::string("bus.size-classes changed") + kRestart};
  if (next.memory.instance_slots != config.bus.max_instances) {
    return Error{ErrorCode::config_error, "bus.max-instances changed from " +
                                              std::to_string(next.memory.instance_slots) + " to " +
                                              std::to_string(config.bus.max_instances) + kRestart};
  }

  // Types: known ones keep their index and memory; new ones take free indices. Types that
  // left the configuration keep theirs: what waits in their memory stays for them.
  std::vector<std::uint16_t> config_index(config.services.size());
  std::vector<std::uint32_t> queue_capacity(next.memory.directory.type_slots, 0);
  for (const shm::BusShape::LinkEntry& link : next.memory.links) {
    queue_capacity[link.shape.receiver] = link.shape.channel_capacity;
  }
  std::uint16_t next_free = 0;
  for (std::size_t position = 0; position < config.services.size(); ++position) {
    const ServiceTypeConfig& type = config.services[position];
    const shm::TenantShape wants = tenant_shape(type, config.bus);
    if (const std::optional<std::uint16_t> known = next.type_index(type.name)) {
      config_index[position] = *known;
      const shm::BusShape::Type* laid_out = next.type(*known);
      const std::string difference = shape_difference(laid_out->shape, wants);
      if (!difference.empty()) {
        return Error{ErrorCode::config_error, "the memory of service type '" + type.name + "' has " + difference +
                                                  kRestart};
      }
      const std::uint32_t capacity = queue_capacity_of(next, *known);
      if (capacity != 0 && capacity != type.queue_capacity) {
        return Error{ErrorCode::config_error, "the queue of service type '" + type.name + "' has queue-capacity " +
                                                  std::to_string(capacity) + " (asks for " +
                                                  std::to_string(type.queue_capacity) + ")" + kRestart};
      }
      queue_capacity[*known] = type.queue_capacity;
      continue;
    }
    while (next_free < next.memory.directory.type_slots &&
           std::any_of(next.types.begin(), next.types.end(), [&](const auto& entry) { return entry.second == next_free; })) {
      ++next_free;
    }
    if (next_free == next.memory.directory.type_slots) {
      return Error{ErrorCode::config_error, "no spare slot left for new service type '" + type.name + "'" + kRestart};
    }
    if (type.name.size() > shm::kMaxTypeName) {
      return Error{ErrorCode::config_error, "service type name '" + type.name + "' is longer than " +
                                                std::to_string(shm::kMaxTypeName) + " characters"};
    }
    if (const Result<shm::TenantLayout> layout = shm::compute_tenant_layout(wants); !layout) {
      return Error{ErrorCode::config_error, "service type '" + type.name + "': " + layout.error().message};
    }
    const shm::BusShape::Type laid_out{next_free, type.name, wants};
    next.types[type.name] = next_free;
    next.memory.types.push_back(laid_out);
    added.types.push_back(laid_out);
    config_index[position] = next_free;
    queue_capacity[next_free] = type.queue_capacity;
  }

  // Links: between the plan's indices of every pair that talks.
  std::uint32_t next_link = 0;
  for (const auto& [sender_position, receiver_position] : talking_pairs(config)) {
    const std::uint16_t sender = config_index[sender_position];
    const std::uint16_t receiver = config_index[receiver_position];
    if (next.link_between(sender, receiver)) continue;
    const auto used = [&](std::uint32_t index) {
      return std::any_of(next.links.begin(), next.links.end(), [&](const auto& entry) { return entry.second == index; });
    };
    while (next_link < next.memory.directory.link_slots && used(next_link)) ++next_link;
    if (next_link == next.memory.directory.link_slots) {
      return Error{ErrorCode::config_error, std::string("no spare link left for a new route") + kRestart};
    }
    const shm::BusShape::Type* receiving = next.type(receiver);
    const shm::BusShape::LinkEntry link{
        next_link, link_shape(sender, receiver, receiving->shape, queue_capacity[receiver], config.bus)};
    if (const Result<shm::LinkLayout> layout = shm::compute_link_layout(link.shape); !layout) return layout.error();
    next.links[{sender, receiver}] = next_link;
    next.memory.links.push_back(link);
    added.links.push_back(link);
  }
  // Every memory object of a type travels with its registration in one datagram.
  for (const auto& [name, index] : next.types) {
    if (2 + 2 * next.links_of(index).size() > kMaxGrantedObjects) {
      return Error{ErrorCode::config_error, "service type '" + name + "' talks to " +
                                                std::to_string(next.links_of(index).size()) +
                                                " others, in either direction; a type may talk to at most " +
                                                std::to_string((kMaxGrantedObjects - 2) / 2)};
    }
  }
  plan = std::move(next);
  return added;
}

}  // namespace exobus
