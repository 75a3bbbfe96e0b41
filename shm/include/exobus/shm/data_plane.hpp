#pragma once
// The message protocols over a mapped data segment: send (allocate, publish, fan out),
// take (lease before release), ack, release, reject, renew; the daemon's recovery of a dead
// instance is in recovery.hpp. The promise kept here: a message whose send returned ok is, at every instant,
// in a ring or in a lease of each target type until that type acknowledges it, whatever
// process dies at whatever step (see the crash analysis at each fault point).
//
// Non-guarantees: no order across senders; at-least-once, not exactly-once (a message
// can be delivered again after a crash, a lease expiry or a release, and then carries
// deliveries > 0); a sender that dies inside send() may have delivered to some targets.
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>

#include "exobus/shm/segment.hpp"

namespace exobus::shm {

// Deliveries counted once more, saturating (the count is a byte in slots and leases).
constexpr std::uint8_t one_more(std::uint8_t deliveries) {
  return deliveries == 0xff ? deliveries : static_cast<std::uint8_t>(deliveries + 1);
}

// A thread's process-local view of its lane: where it scans for chunks and leases.
struct LaneCursor {
  std::uint16_t lane = 0;
  std::uint32_t chunk_cursors[kMaxSizeClasses]{};
  std::uint32_t lease_cursor = 0;
};

enum class SendStatus : std::uint8_t {
  ok,
  too_large,
  pool_exhausted,
  queue_full,
  no_targets,
  too_many_targets,
  corrupted
};
struct SendResult {
  SendStatus status;
  std::uint16_t failed_ring = kNoRing;  // the ring that was full or corrupt
  std::uint32_t delivered_targets = 0;  // targets reached before a failure
};

struct Delivery {
  MessageHandle handle;
  LeaseToken lease;
  std::uint8_t deliveries = 0;  // earlier deliveries; > 0 means redelivered
  std::uint16_t ring = 0;
  std::span<const std::byte> payload;
  bool redelivered() const { return deliveries > 0; }
};

enum class TakeOutcomeStatus : std::uint8_t { ok, empty, no_free_lease, corrupted };
struct TakeOutcome {
  TakeOutcomeStatus status;
  Delivery delivery;
};

enum class LeaseStatus : std::uint8_t { ok, late, queue_full };

struct RecoveryReport;  // recovery.hpp

struct BusAudit {
  PoolAudit pool;
  std::uint64_t queued = 0;           // FULL slots over all rings
  std::uint64_t leased = 0;           // ACTIVE or RECLAIMING leases
  std::uint64_t in_flight_slots = 0;  // WRITING or READING slots (operations under way)
};

class DataPlane {
 public:
  explicit DataPlane(const Segment& segment);

  std::uint16_t lane_of(std::uint32_t instance, std::uint32_t k) const {
    return static_cast<std::uint16_t>(instance * lanes_per_instance_ + k);
  }
  std::uint32_t instance_of(std::uint16_t lane) const { return lane / lanes_per_instance_; }
  std::uint32_t ring_count() const { return segment_.ring_count(); }
  std::size_t largest_payload() const { return pool_.largest_chunk(); }
  ReadyRing ring(std::uint16_t index) const { return segment_.ring(index); }
  const Segment& segment() const { return segment_; }

  // Zero-copy send: allocate, write into allocation.buffer, then publish.
  Allocation allocate(LaneCursor& cursor, std::size_t size);
  SendResult publish(LaneCursor& cursor, MessageHandle handle, std::uint32_t length,
                     std::span<const std::uint16_t> target_rings);
  void abandon(LaneCursor& cursor, MessageHandle handle) { abandon(instance_of(cursor.lane), handle); }
  // The same for a chunk that `instance` holds on no lane (a loan).
  void abandon(std::uint32_t instance, MessageHandle handle);
  SendResult send(LaneCursor& cursor, std::span<const std::byte> bytes, std::span<const std::uint16_t> target_rings);

  TakeOutcome take(LaneCursor& cursor, std::uint16_t ring, std::uint32_t now_ms);
  LeaseStatus ack(const LeaseToken& lease);
  LeaseStatus renew(const LeaseToken& lease, std::uint32_t now_ms);
  // Requeue now (deliveries + 1), or dead-letter; the copy is pushed on `cursor`'s lane.
  LeaseStatus release(const LeaseToken& lease, LaneCursor& cursor);
  LeaseStatus reject(const LeaseToken& lease, LaneCursor& cursor);
  // Move a leased message to another ring as a fresh delivery (dead letters requeued).
  LeaseStatus move(const LeaseToken& lease, std::uint16_t ring, LaneCursor& cursor);
  bool still_pending(MessageHandle handle) const { return pool_.still_pending(handle); }
  // Asked after reading a delivery's payload: whether every byte read was its message's.
  // False only when the lease was lost and the chunk reused meanwhile (see ChunkPool).
  bool intact(MessageHandle handle) const { return pool_.intact(handle); }

  BusAudit audit() const;

  // Milliseconds of CLOCK_MONOTONIC_COARSE, modulo 2^32 (no system call: vDSO).
  static std::uint32_t now_ms();

 private:
  friend class Recovery;  // the daemon's half: recovery.hpp
  enum class Requeue : std::uint8_t { to_ring, to_dead_letters, to_other_ring };
  std::optional<LeaseTable> lease_table_of(const LeaseToken& lease) const {
    if (lease.lane >= segment_.lane_count()) return std::nullopt;
    return segment_.lease_table(lease.lane);
  }
  // The token's entry, or null for a lane or entry out of range.
  LeaseEntry* lease_entry(const LeaseToken& lease) const {
    const std::optional<LeaseTable> leases = lease_table_of(lease);
    return leases ? leases->find(lease) : nullptr;
  }
  // Move a lease's message back to its ring (or the dead letters); entry must be ACTIVE or
  // RECLAIMING with `word` as its current state.
  LeaseStatus reclaim(LeaseEntry& entry, std::uint64_t word, Requeue where, LaneCursor& cursor, RecoveryReport* report,
                      std::uint16_t other_ring = kNoRing);
  LeaseStatus reclaim_leased(const LeaseToken& lease, Requeue where, LaneCursor& cursor, std::uint16_t other_ring);

  const Segment& segment_;
  ChunkPool pool_;
  std::uint32_t lanes_per_instance_;
};

}  // namespace exobus::shm
