#pragma once
// The directory: what a bus is made of, written by the daemon alone and mapped read-only
// by every instance. It holds the shape of every service type's memory and of every link,
// so a mapper computes where everything lies from what only the daemon can write, never
// from memory a tenant could scribble on; and the routing generation, which the daemon
// bumps after a reload.
//
//   +------------------------------+  0
//   | DirectoryHeader              |  written once before the magic (release); then only
//   |                              |  routing_generation and observers change
//   +------------------------------+  128
//   | TypeRecord[type slots]       |  a record is written once, before its in_use (release)
//   +------------------------------+
//   | LinkRecord[link slots]       |  the same
//   +------------------------------+
// Records are only ever added (at a reload), so an instance that read one may keep it.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "exobus/error.hpp"
#include "exobus/shm/link.hpp"
#include "exobus/shm/tenant.hpp"

namespace exobus::shm {

inline constexpr std::uint64_t kDirectoryMagic = 0x3342445342584f45;  // "EOXBSDB3"
inline constexpr std::uint32_t kLayoutVersion = 5;
inline constexpr std::uint32_t kMaxTypeName = 96;

// Bits of DirectoryHeader::observers: what the daemon asks of every instance while someone
// watches the bus. Each costs the hot path one relaxed load and a branch while it is off.
inline constexpr std::uint32_t kObserveSendTimes = 1u << 0;   // senders stamp Envelope::sent_at_ns
inline constexpr std::uint32_t kObserveDeliveries = 1u << 1;  // receivers trace their deliveries

struct alignas(64) DirectoryHeader {
  std::atomic<std::uint64_t> magic;  // kDirectoryMagic once initialised (stored last)
  std::uint32_t layout_version;
  std::uint32_t type_slots;
  std::uint32_t link_slots;
  std::uint32_t size_class_count;
  std::uint64_t bus_generation;  // random per creation: tells a new bus from an old one
  // Bumped by the daemon after each configuration reload; instances reload their routing
  // when it changes (one relaxed load per send).
  std::atomic<std::uint64_t> routing_generation;
  SizeClass size_classes[kMaxSizeClasses];
  std::uint32_t lanes_per_instance;
  // kObserve* bits, stored by the daemon whenever what watches the bus changes (metrics
  // configured, a tail attached), read relaxed by instances: a stale read only stamps or
  // traces a message more or fewer. A daemon that adopts a bus's memory stores its own.
  std::atomic<std::uint32_t> observers;
};
static_assert(sizeof(DirectoryHeader) == 128 && std::is_standard_layout_v<DirectoryHeader>);
static_assert(offsetof(DirectoryHeader, magic) == 0 && offsetof(DirectoryHeader, layout_version) == 8 &&
              offsetof(DirectoryHeader, type_slots) == 12 && offsetof(DirectoryHeader, link_slots) == 16 &&
              offsetof(DirectoryHeader, size_class_count) == 20 && offsetof(DirectoryHeader, bus_generation) == 24 &&
              offsetof(DirectoryHeader, routing_generation) == 32 && offsetof(DirectoryHeader, size_classes) == 40 &&
              offsetof(DirectoryHeader, lanes_per_instance) == 104 && offsetof(DirectoryHeader, observers) == 108);

struct TypeRecord {
  std::atomic<std::uint32_t> in_use;
  std::uint32_t instances;
  std::uint32_t leases_per_lane;
  std::uint32_t retry_capacity;
  std::uint32_t dead_letter_capacity;
  std::uint32_t lease_ms;
  std::uint32_t delivery_limit;
  std::uint32_t name_length;
  char name[kMaxTypeName];
};
static_assert(sizeof(TypeRecord) == 128 && offsetof(TypeRecord, instances) == 4 &&
              offsetof(TypeRecord, leases_per_lane) == 8 && offsetof(TypeRecord, retry_capacity) == 12 &&
              offsetof(TypeRecord, dead_letter_capacity) == 16 && offsetof(TypeRecord, lease_ms) == 20 &&
              offsetof(TypeRecord, delivery_limit) == 24 && offsetof(TypeRecord, name_length) == 28 &&
              offsetof(TypeRecord, name) == 32);

struct LinkRecord {
  std::atomic<std::uint32_t> in_use;
  std::uint16_t sender;
  std::uint16_t receiver;
  std::uint32_t channel_capacity;
  std::uint32_t reply_channels;
  std::uint32_t reply_capacity;
  std::uint32_t reserved[3];
};
static_assert(sizeof(LinkRecord) == 32 && offsetof(LinkRecord, sender) == 4 && offsetof(LinkRecord, receiver) == 6 &&
              offsetof(LinkRecord, channel_capacity) == 8 && offsetof(LinkRecord, reply_channels) == 12 &&
              offsetof(LinkRecord, reply_capacity) == 16);

struct DirectoryShape {
  std::uint32_t type_slots = 0, link_slots = 0, lanes_per_instance = 0;
  std::vector<SizeClass> size_classes;
};

class Directory {
 public:
  static std::uint64_t bytes(std::uint32_t type_slots, std::uint32_t link_slots);

  // Over mapped memory of `size` bytes. check() before anything else, on memory another
  // process made.
  Directory(std::byte* base, std::uint64_t size) : base_(base), size_(size) {}
  // The daemon: writes the header of a new directory (zero-filled memory).
  void initialise(const DirectoryShape& shape, std::uint64_t bus_generation);
  // Whether this is a complete directory of this layout version. Errors: not_initialised,
  // corrupted, version_mismatch.
  Result<void> check() const;

  DirectoryHeader& header() const { return *reinterpret_cast<DirectoryHeader*>(base_); }
  std::uint32_t type_slots() const { return header().type_slots; }
  std::uint32_t link_slots() const { return header().link_slots; }
  std::vector<SizeClass> size_classes() const;

  // The daemon: writes a record once (in_use stored last).
  void add_type(std::uint16_t type, std::string_view name, const TenantShape& shape);
  void add_link(std::uint32_t link, const LinkShape& shape);

  // A record in use, or nothing (out of range, not in use).
  std::optional<TenantShape> type_shape(std::uint16_t type) const;
  std::string_view type_name(std::uint16_t type) const;  // empty when not in use
  std::optional<LinkShape> link_shape(std::uint32_t link) const;

 private:
  TypeRecord* types() const { return reinterpret_cast<TypeRecord*>(base_ + sizeof(DirectoryHeader)); }
  LinkRecord* links() const { return reinterpret_cast<LinkRecord*>(types() + header().type_slots); }
  std::byte* base_;
  std::uint64_t size_;
};

}  // namespace exobus::shm
