#include "exobus/shm/directory.hpp"

#include <algorithm>
#include <cstring>

namespace exobus::shm {

std::uint64_t Directory::bytes(std::uint32_t type_slots, std::uint32_t link_slots) {
  return sizeof(DirectoryHeader) + std::uint64_t{type_slots} * sizeof(TypeRecord) +
         std::uint64_t{link_slots} * sizeof(LinkRecord);
}

void Directory::initialise(const DirectoryShape& shape, std::uint64_t bus_generation) {
  DirectoryHeader& head = header();
  head.layout_version = kLayoutVersion;
  head.type_slots = shape.type_slots;
  head.link_slots = shape.link_slots;
  head.size_class_count = static_cast<std::uint32_t>(std::min<std::size_t>(shape.size_classes.size(), kMaxSizeClasses));
  head.bus_generation = bus_generation;
  head.routing_generation.store(1, std::memory_order_relaxed);
  std::copy_n(shape.size_classes.begin(), head.size_class_count, head.size_classes);
  head.lanes_per_instance = shape.lanes_per_instance;
  head.observers.store(0, std::memory_order_relaxed);
  // Release: every store above is visible to a mapper that acquires the magic.
  head.magic.store(kDirectoryMagic, std::memory_order_release);
}

Result<void> Directory::check() const {
  if (size_ < sizeof(DirectoryHeader)) return Error{ErrorCode::corrupted, "the bus's directory is too small"};
  const DirectoryHeader& head = header();
  const std::uint64_t magic = head.magic.load(std::memory_order_acquire);
  if (magic == 0) return Error{ErrorCode::not_initialised, "the bus's directory is not initialised"};
  if (magic != kDirectoryMagic) return Error{ErrorCode::corrupted, "the memory handed over is not an ExoBus directory"};
  if (head.layout_version != kLayoutVersion) {
    return Error{ErrorCode::version_mismatch, "the bus's memory has layout version " +
                                                  std::to_string(head.layout_version) +
                                                  " but this library speaks version " + std::to_string(kLayoutVersion) +
                                                  "; run services and exobusd of the same release"};
  }
  if (head.size_class_count == 0 || head.size_class_count > kMaxSizeClasses || head.lanes_per_instance == 0 ||
      bytes(head.type_slots, head.link_slots) != size_) {
    return Error{ErrorCode::corrupted, "the bus's directory has an inconsistent header"};
  }
  return {};
}

std::vector<SizeClass> Directory::size_classes() const {
  const DirectoryHeader& head = header();
  return {head.size_classes, head.size_classes + head.size_class_count};
}

void Directory::add_type(std::uint16_t type, std::string_view name, const TenantShape& shape) {
  TypeRecord& record = types()[type];
  record.instances = shape.instances;
  record.leases_per_lane = shape.leases_per_lane;
  record.retry_capacity = shape.retry_capacity;
  record.dead_letter_capacity = shape.dead_letter_capacity;
  record.lease_ms = shape.lease_ms;
  record.delivery_limit = shape.delivery_limit;
  record.name_length = static_cast<std::uint32_t>(std::min<std::size_t>(name.size(), kMaxTypeName));
  std::memcpy(record.name, name.data(), record.name_length);
  record.in_use.store(1, std::memory_order_release);
}

void Directory::add_link(std::uint32_t link, const LinkShape& shape) {
  LinkRecord& record = links()[link];
  record.sender = shape.sender;
  record.receiver = shape.receiver;
  record.channel_capacity = shape.channel_capacity;
  record.reply_channels = shape.reply_channels;
  record.reply_capacity = shape.reply_capacity;
  record.in_use.store(1, std::memory_order_release);
}

std::optional<TenantShape> Directory::type_shape(std::uint16_t type) const {
  if (type >= type_slots()) return std::nullopt;
  const TypeRecord& record = types()[type];
  if (record.in_use.load(std::memory_order_acquire) != 1) return std::nullopt;
  return TenantShape{record.instances,      header().lanes_per_instance, record.leases_per_lane,
                     record.retry_capacity, record.dead_letter_capacity, record.lease_ms,
                     record.delivery_limit};
}

std::string_view Directory::type_name(std::uint16_t type) const {
  if (type >= type_slots()) return {};
  const TypeRecord& record = types()[type];
  if (record.in_use.load(std::memory_order_acquire) != 1) return {};
  return {record.name, std::min<std::size_t>(record.name_length, kMaxTypeName)};
}

std::optional<LinkShape> Directory::link_shape(std::uint32_t link) const {
  if (link >= link_slots()) return std::nullopt;
  const LinkRecord& record = links()[link];
  if (record.in_use.load(std::memory_order_acquire) != 1) return std::nullopt;
  return LinkShape{record.sender,         record.receiver,     record.channel_capacity,
                   record.reply_channels, record.reply_capacity, size_classes()};
}

}  // namespace exobus::shm
