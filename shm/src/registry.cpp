#include "exobus/shm/registry.hpp"

#include "exobus/shm/directory.hpp"

namespace exobus::shm {

std::string_view to_string(RegionKind kind) {
  switch (kind) {
    case RegionKind::registry: return "registry";
    case RegionKind::directory: return "directory";
    case RegionKind::tenant: return "tenant";
    case RegionKind::sender_half: return "sender_half";
    case RegionKind::receiver_half: return "receiver_half";
  }
  return "unknown";
}

std::optional<RegionKind> region_kind(std::string_view name) {
  for (const RegionKind kind : {RegionKind::registry, RegionKind::directory, RegionKind::tenant,
                                RegionKind::sender_half, RegionKind::receiver_half}) {
    if (to_string(kind) == name) return kind;
  }
  return std::nullopt;
}

std::uint64_t Registry::bytes(std::uint32_t instance_slots, std::uint32_t region_slots) {
  return sizeof(RegistryHeader) + std::uint64_t{instance_slots} * sizeof(InstanceEntry) +
         std::uint64_t{region_slots} * sizeof(RegionEntry);
}

void Registry::initialise(std::uint32_t instance_slots, std::uint32_t region_slots) {
  RegistryHeader& head = header();
  head.layout_version = kLayoutVersion;
  head.instance_slots = instance_slots;
  head.region_slots = region_slots;
  head.region_count.store(0, std::memory_order_relaxed);
  head.magic.store(kRegistryMagic, std::memory_order_release);
}

Result<void> Registry::check() const {
  if (size_ < sizeof(RegistryHeader)) return Error{ErrorCode::corrupted, "the bus's registry is too small"};
  const RegistryHeader& head = header();
  const std::uint64_t magic = head.magic.load(std::memory_order_acquire);
  if (magic == 0) return Error{ErrorCode::not_initialised, "the bus's registry is not initialised"};
  if (magic != kRegistryMagic) return Error{ErrorCode::corrupted, "the memory kept first is not an ExoBus registry"};
  if (head.layout_version != kLayoutVersion) {
    return Error{ErrorCode::version_mismatch, "the bus's memory has layout version " +
                                                  std::to_string(head.layout_version) + " but this exobusd speaks " +
                                                  std::to_string(kLayoutVersion)};
  }
  if (bytes(head.instance_slots, head.region_slots) != size_ ||
      head.region_count.load(std::memory_order_relaxed) > head.region_slots) {
    return Error{ErrorCode::corrupted, "the bus's registry has an inconsistent header"};
  }
  return {};
}

bool Registry::append_region(RegionKind kind, std::uint32_t index) {
  RegistryHeader& head = header();
  const std::uint32_t count = head.region_count.load(std::memory_order_relaxed);
  if (count >= head.region_slots) return false;
  regions()[count] = {kind, {}, index};
  head.region_count.store(count + 1, std::memory_order_release);
  return true;
}

}  // namespace exobus::shm
