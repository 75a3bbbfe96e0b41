#pragma once
// The layout of a bus's data segment: everything processes share to move messages.
//
//  Data segment
//  +----------------------+  0
//  | SegmentHeader        |  written once by the creator; magic stored last (release)
//  +----------------------+  rings_offset
//  | RingDescriptor[R]    |  creator only
//  +----------------------+  instances_offset
//  | InstanceSlot[I]      |  daemon (state, identity); the instance (heartbeat, counters)
//  +----------------------+  lanes_offset
//  | Lane[I * L]          |  LaneHeader + LeaseEntry[leases_per_lane]; see lane.hpp
//  +----------------------+  ring offsets
//  | RingHeader + slots   |  one per ring; see ready_ring.hpp
//  +----------------------+  size class offsets
//  | chunks of each class |  see chunk_pool.hpp
//  +----------------------+  total_size
//
// Only offsets and indices live in the segment, never pointers. An opener never trusts
// the offsets it finds: it recomputes the whole layout from the header's counts and
// refuses the segment unless every offset and the total size agree.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "exobus/error.hpp"
#include "exobus/shm/chunk_pool.hpp"
#include "exobus/shm/lane.hpp"
#include "exobus/shm/ready_ring.hpp"

namespace exobus::shm {

inline constexpr std::uint64_t kSegmentMagic = 0x3153554242584f45;  // "EOXBBUS1"
inline constexpr std::uint32_t kLayoutVersion = 2;
inline constexpr std::uint16_t kNoRing = 0xffff;
inline constexpr std::uint32_t kMaxRings = 4096;
inline constexpr std::uint32_t kMaxLanes = 0xffff;

// What one ring is for, decided by the daemon from the configuration.
struct RingSpec {
  std::uint32_t capacity;          // power of two
  std::uint32_t lease_ms;          // ack deadline for messages taken from this ring
  std::uint8_t delivery_limit;     // deliveries before a message is dead-lettered
  std::uint16_t dead_letter_ring;  // kNoRing: messages over the limit are dropped and counted
};

struct LayoutSpec {
  std::vector<SizeClassLayout> size_classes;  // chunk_size and chunk_count set; ascending
  std::vector<RingSpec> rings;
  std::uint32_t max_instances = 64;
  std::uint32_t lanes_per_instance = 4;
  std::uint32_t leases_per_lane = 256;
};

//  RingDescriptor (24 bytes): what one ring is for. Written once by the segment's creator;
//  openers recompute the whole layout from these and the header's counts.
//  0               8       12      16  17  18      20      24
//  +---------------+-------+-------+---+---+-------+-------+
//  |  offset       |capacity lease ms|lim| - |dead l.|  -    |
//  +---------------+-------+-------+---+---+-------+-------+
struct RingDescriptor {
  std::uint64_t offset;
  std::uint32_t capacity;
  std::uint32_t lease_ms;
  std::uint8_t delivery_limit;
  std::uint8_t unused;
  std::uint16_t dead_letter_ring;
  std::uint32_t reserved;
};
static_assert(sizeof(RingDescriptor) == 24 && alignof(RingDescriptor) == 8 &&
              std::is_trivially_copyable_v<RingDescriptor> && std::is_standard_layout_v<RingDescriptor>);
static_assert(offsetof(RingDescriptor, offset) == 0 && offsetof(RingDescriptor, capacity) == 8 &&
              offsetof(RingDescriptor, lease_ms) == 12 && offsetof(RingDescriptor, delivery_limit) == 16 &&
              offsetof(RingDescriptor, unused) == 17 && offsetof(RingDescriptor, dead_letter_ring) == 18 &&
              offsetof(RingDescriptor, reserved) == 20);

enum class InstanceState : std::uint32_t { free = 0, active = 1, recovering = 2 };

//  InstanceSlot (128 bytes, two cache lines: the daemon's and the instance's)
//  line 0 (daemon): state, pid, start time (with the pid, a unique process identity),
//                   home ring (its service type's ring), inbox ring, nonce hash
//  line 1 (the instance itself): heartbeat (ms, monotonic), message counters, attached
//
//  attached: 1 while the instance may use its lanes. The daemon stores 0 when it hands out
//  a free slot; the instance stores 1 once it has its registration, before its first take
//  or send, and 0 in a clean stop, after its last. A slot is recovered and freed only when
//  its process has exited, or when its connection closed and attached is 0: a live
//  instance that merely lost its connection (a re-registration it gave up waiting for)
//  keeps its slot, or two processes would share its lanes.
struct alignas(64) InstanceSlot {
  std::atomic<std::uint32_t> state;
  std::atomic<std::int32_t> pid;
  std::atomic<std::uint64_t> start_time;
  std::atomic<std::uint16_t> home_ring;
  std::atomic<std::uint16_t> inbox_ring;
  std::atomic<std::uint64_t> nonce_hash;  // the instance's registration nonce, for resuming
  alignas(64) std::atomic<std::uint64_t> heartbeat_ms;
  std::atomic<std::uint64_t> sent;
  std::atomic<std::uint64_t> delivered;
  std::atomic<std::uint64_t> acked;
  std::atomic<std::uint64_t> redelivered;
  std::atomic<std::uint32_t> attached;
};
static_assert(sizeof(InstanceSlot) == 128 && alignof(InstanceSlot) == 64 && std::is_standard_layout_v<InstanceSlot>);
static_assert(offsetof(InstanceSlot, state) == 0 && offsetof(InstanceSlot, pid) == 4 &&
              offsetof(InstanceSlot, start_time) == 8 && offsetof(InstanceSlot, home_ring) == 16 &&
              offsetof(InstanceSlot, inbox_ring) == 18 && offsetof(InstanceSlot, nonce_hash) == 24 &&
              offsetof(InstanceSlot, heartbeat_ms) == 64 && offsetof(InstanceSlot, sent) == 72 &&
              offsetof(InstanceSlot, delivered) == 80 && offsetof(InstanceSlot, acked) == 88 &&
              offsetof(InstanceSlot, redelivered) == 96 && offsetof(InstanceSlot, attached) == 104);

//  SegmentHeader (272 bytes at offset 0): written once by the creator before it stores the
//  magic (release); only routing_generation changes afterwards (the daemon, at reloads).
//  0        8      12     16     20     24     28     32       40        48        56
//  +--------+------+------+------+------+------+------+--------+---------+---------+---
//  | magic  |layout|sizes |rings |insts |lanes |leases| total  | bus gen.| routing | ...
//  +--------+------+------+------+------+------+------+--------+---------+---------+---
//  56             64              72              80                                272
//  +--------------+---------------+---------------+---------------------------------+
//  | rings offset | insts offset  | lanes offset  | SizeClassLayout[8]              |
//  +--------------+---------------+---------------+---------------------------------+
struct SegmentHeader {
  std::atomic<std::uint64_t> magic;  // kSegmentMagic once initialised (stored last)
  std::uint32_t layout_version;
  std::uint32_t size_class_count;
  std::uint32_t ring_count;
  std::uint32_t max_instances;
  std::uint32_t lanes_per_instance;
  std::uint32_t leases_per_lane;
  std::uint64_t total_size;
  std::uint64_t bus_generation;  // random per creation: tells a new bus from an old one
  // Bumped by the daemon after each configuration reload; clients reload their routing
  // when it changes (one relaxed load per send).
  std::atomic<std::uint64_t> routing_generation;
  std::uint64_t rings_offset;
  std::uint64_t instances_offset;
  std::uint64_t lanes_offset;
  SizeClassLayout size_classes[kMaxSizeClasses];
};
static_assert(sizeof(SegmentHeader) == 272 && alignof(SegmentHeader) == 8 && std::is_standard_layout_v<SegmentHeader>);
static_assert(offsetof(SegmentHeader, magic) == 0 && offsetof(SegmentHeader, layout_version) == 8 &&
              offsetof(SegmentHeader, size_class_count) == 12 && offsetof(SegmentHeader, ring_count) == 16 &&
              offsetof(SegmentHeader, max_instances) == 20 && offsetof(SegmentHeader, lanes_per_instance) == 24 &&
              offsetof(SegmentHeader, leases_per_lane) == 28 && offsetof(SegmentHeader, total_size) == 32 &&
              offsetof(SegmentHeader, bus_generation) == 40 && offsetof(SegmentHeader, routing_generation) == 48 &&
              offsetof(SegmentHeader, rings_offset) == 56 && offsetof(SegmentHeader, instances_offset) == 64 &&
              offsetof(SegmentHeader, lanes_offset) == 72 && offsetof(SegmentHeader, size_classes) == 80);

// Offsets of everything, computed from the counts alone (by the creator and each opener).
struct Layout {
  std::uint64_t rings_offset = 0, instances_offset = 0, lanes_offset = 0;
  std::uint64_t lane_stride = 0;
  std::uint32_t max_instances = 0, lanes_per_instance = 0, leases_per_lane = 0;
  std::vector<RingDescriptor> rings;
  std::vector<SizeClassLayout> size_classes;
  std::uint64_t total_size = 0;
};

// Validates the spec (powers of two, bounds) and lays it out; config_error otherwise.
Result<Layout> compute_layout(const LayoutSpec& spec);

}  // namespace exobus::shm
