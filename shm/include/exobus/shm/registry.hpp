#pragma once
// The registry: the daemon's own memory, mapped by nobody else and kept, with the rest of
// the bus's memory, by the keeper between daemons. It says which registered process holds
// which instance slot, and which memory object each descriptor the keeper holds is, so a
// restarted daemon finds its instances and its memory without trusting a byte a tenant
// could have written.
//
//   +------------------------------+  0
//   | RegistryHeader               |  written once before the magic (release)
//   +------------------------------+  64
//   | InstanceEntry[instances]     |  one per instance slot of the bus
//   +------------------------------+
//   | RegionEntry[region slots]    |  the keeper's descriptors, in the order kept
//   +------------------------------+
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "exobus/error.hpp"

namespace exobus::shm {

inline constexpr std::uint64_t kRegistryMagic = 0x3347455242584f45;  // "EOXBREG3"

enum class RegionKind : std::uint8_t { registry = 0, directory = 1, tenant = 2, sender_half = 3, receiver_half = 4 };
// "registry", "directory", "tenant", "sender_half", "receiver_half": the names the control
// protocol grants memory under.
std::string_view to_string(RegionKind kind);
std::optional<RegionKind> region_kind(std::string_view name);

struct RegionEntry {
  RegionKind kind;
  std::uint8_t unused[3];
  std::uint32_t index;  // the type of a tenant region, the link of a half
};
static_assert(sizeof(RegionEntry) == 8 && offsetof(RegionEntry, index) == 4);

struct alignas(64) RegistryHeader {
  std::atomic<std::uint64_t> magic;
  std::uint32_t layout_version;
  std::uint32_t instance_slots;
  std::uint32_t region_slots;
  std::atomic<std::uint32_t> region_count;
};
static_assert(sizeof(RegistryHeader) == 64 && offsetof(RegistryHeader, instance_slots) == 12 &&
              offsetof(RegistryHeader, region_slots) == 16 && offsetof(RegistryHeader, region_count) == 20);

enum class InstanceState : std::uint32_t { free = 0, active = 1, recovering = 2 };

//  InstanceEntry (64 bytes, one cache line): which process holds a slot. Every field is
//  written by the daemon alone (this is its private memory), the others before state
//  (release), which a reader loads first (acquire).
//
//   0       4       8               16  18  20      24              32              64
//   +-------+-------+---------------+---+---+-------+---------------+---------------+
//   | state | pid   | start_time    |typ|mem| uid   | nonce_hash    |   (unused)    |
//   +-------+-------+---------------+---+---+-------+---------------+---------------+
//
//  state, pid and start time (with the pid, a unique process identity) name it; type and
//  member its place in the type's tenant memory; uid the user it runs as (SO_PEERCRED),
//  counted against bus.max-instances-per-user; nonce_hash its registration nonce, for
//  resuming it after a restart.
struct alignas(64) InstanceEntry {
  std::atomic<std::uint32_t> state;
  std::atomic<std::int32_t> pid;
  std::atomic<std::uint64_t> start_time;
  std::atomic<std::uint16_t> type;
  std::atomic<std::uint16_t> member;  // the instance's index among its type's instances
  std::atomic<std::uint32_t> uid;
  std::atomic<std::uint64_t> nonce_hash;
};
static_assert(sizeof(InstanceEntry) == 64 && alignof(InstanceEntry) == 64 && offsetof(InstanceEntry, pid) == 4 &&
              offsetof(InstanceEntry, start_time) == 8 && offsetof(InstanceEntry, type) == 16 &&
              offsetof(InstanceEntry, member) == 18 && offsetof(InstanceEntry, uid) == 20 &&
              offsetof(InstanceEntry, nonce_hash) == 24);

class Registry {
 public:
  static std::uint64_t bytes(std::uint32_t instance_slots, std::uint32_t region_slots);

  Registry(std::byte* base, std::uint64_t size) : base_(base), size_(size) {}
  void initialise(std::uint32_t instance_slots, std::uint32_t region_slots);
  // Errors: not_initialised, corrupted, version_mismatch.
  Result<void> check() const;

  RegistryHeader& header() const { return *reinterpret_cast<RegistryHeader*>(base_); }
  std::uint32_t instance_slots() const { return header().instance_slots; }
  InstanceEntry& instance(std::uint32_t slot) const { return instances()[slot]; }

  std::uint32_t region_count() const { return header().region_count.load(std::memory_order_acquire); }
  const RegionEntry& region(std::uint32_t k) const { return regions()[k]; }
  // Records the next descriptor handed to the keeper; false when the table is full.
  bool append_region(RegionKind kind, std::uint32_t index);

 private:
  InstanceEntry* instances() const { return reinterpret_cast<InstanceEntry*>(base_ + sizeof(RegistryHeader)); }
  RegionEntry* regions() const { return reinterpret_cast<RegionEntry*>(instances() + header().instance_slots); }
  std::byte* base_;
  std::uint64_t size_;
};

}  // namespace exobus::shm
