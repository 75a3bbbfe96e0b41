#pragma once
// The message protocols of one instance (or of the daemon, acting in a type's memory as
// the type's last instance): send (allocate, publish to every target, all or nothing),
// take (lease before release), ack, release, reject, renew. The daemon's recovery of a
// dead instance is in recovery.hpp. The promise kept here: a message whose send returned
// ok is, at every instant, in a channel, a ring or a lease of each target type until that
// type acknowledges it, whatever process dies at whatever step (see the crash analysis at
// each fault point).
//
// An instance of type T writes only T's tenant memory, the sender halves of links from T
// and the receiver halves of links to T; every handle it reads from another type's memory
// is checked to be that link's before it is used.
//
// Non-guarantees: no order across senders; at-least-once, not exactly-once (a message can
// be delivered again after a crash, a lease expiry or a release, and then carries
// deliveries > 0).
#include <cstdint>
#include <optional>
#include <span>

#include "exobus/shm/bus_memory.hpp"

namespace exobus::shm {

// The lanes of an instance, by k: lane 0 takes commands, lane 1 replies (its leases are
// acknowledged, never requeued: a reply is for its requester alone), the rest send.
inline constexpr std::uint32_t kCommandLane = 0;
inline constexpr std::uint32_t kReplyLane = 1;
inline constexpr std::uint32_t kFirstSendLane = 2;

// Deliveries counted once more, saturating (the count is a byte in slots and leases).
constexpr std::uint8_t one_more(std::uint8_t deliveries) {
  return deliveries == 0xff ? deliveries : static_cast<std::uint8_t>(deliveries + 1);
}

// A thread's process-local view of its lane: where it scans for a free lease.
struct LaneCursor {
  std::uint16_t lane = 0;
  std::uint32_t lease_cursor = 0;
};

// Where a message goes: a link from the sender's type, and one of its channels
// (kTypeChannel, or the reply channel of the requester's instance + 1).
struct Destination {
  Link* link = nullptr;
  std::uint32_t channel = kTypeChannel;
};

// One target of a send: the chunk the caller allocated in that link's pool and wrote.
struct Part {
  Destination to;
  MessageHandle handle;
  std::uint32_t length = 0;
};

enum class SendStatus : std::uint8_t { ok, queue_full, corrupted, too_many_targets };
struct SendResult {
  SendStatus status;
  std::uint32_t failed_part = 0;  // the target that was full or corrupt
};

struct Delivery {
  MessageHandle handle;
  LeaseToken lease;
  std::uint8_t deliveries = 0;  // earlier deliveries; > 0 means redelivered
  Link* link = nullptr;         // the link it came by: its sender is the message's sender
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

class DataPlane {
 public:
  // The plane of instance `member` of `type` (or of the daemon: tenant.daemon_instance()).
  // The type's tenant memory must be mapped.
  DataPlane(const BusMemory& memory, std::uint16_t type, std::uint32_t member);

  std::uint16_t type() const { return type_; }
  std::uint32_t member() const { return member_; }
  Tenant& tenant() const { return tenant_; }
  std::uint16_t lane(std::uint32_t k) const { return tenant_.lane_of(member_, k); }
  const BusMemory& memory() const { return memory_; }

  // --- sending ---
  // Zero-copy: allocate a chunk in each target's link, write it, then publish them all.
  Allocation allocate(Link& link, std::size_t size);
  void abandon(Link& link, MessageHandle handle);
  // Publishes every part, or none: on failure every chunk is still this instance's, for
  // the caller to retry or abandon.
  SendResult publish(LaneCursor& cursor, std::span<const Part> parts);

  // --- receiving ---
  // Takes from a channel of `link` (its type channel, or this instance's reply channel).
  TakeOutcome take(LaneCursor& cursor, Link& link, Channel& channel, std::uint32_t now_ms);
  // Takes from the type's retry ring.
  TakeOutcome take_retry(LaneCursor& cursor, std::uint32_t now_ms);
  LeaseStatus ack(const LeaseToken& lease);
  LeaseStatus renew(const LeaseToken& lease, std::uint32_t now_ms);
  // Requeue now (deliveries + 1), or dead-letter; the copy is pushed on `cursor`'s lane.
  LeaseStatus release(const LeaseToken& lease, LaneCursor& cursor);
  LeaseStatus reject(const LeaseToken& lease, LaneCursor& cursor);
  // Asked after reading a delivery's payload: whether every byte read was its message's.
  // False only when the lease was lost and the chunk reused meanwhile (see ChunkPool).
  static bool intact(const Delivery& delivery) { return delivery.link->pool().intact(delivery.handle); }
  // Counts a message the library refused (a name its sender may not send, a forged sender
  // or reply, an invalid payload): in the link by reason, for the daemon's status, and in
  // this instance's record.
  void count_refused(Link& link, RefusalReason reason) const;

  // --- the daemon's dead letters (a plane of the daemon's own instance) ---
  TakeOutcome take_dead_letter(LaneCursor& cursor, std::uint32_t now_ms);
  // Moves a leased message to the retry ring as a fresh delivery (a dead letter requeued).
  LeaseStatus requeue(const LeaseToken& lease, LaneCursor& cursor);

  // Milliseconds of CLOCK_MONOTONIC_COARSE, modulo 2^32 (no system call: vDSO).
  static std::uint32_t now_ms();

 private:
  friend class Recovery;  // the daemon's half: recovery.hpp
  enum class Requeue : std::uint8_t { to_retry, to_dead_letters, as_new };
  LeaseEntry* lease_entry(const LeaseToken& lease) const;
  // The link a handle names, if its receiver is this type and it is mapped here.
  Link* incoming(MessageHandle handle) const;
  Channel* channel_of(const Destination& to) const;
  TakeOutcome take_from_ring(LaneCursor& cursor, ReadyRing ring, std::uint32_t now_ms);
  // Moves a lease's message to the retry ring (or the dead letters); `entry` must be
  // ACTIVE or RECLAIMING with `word` as its current state. A reply's lease (one of a
  // reply lane) is acknowledged instead.
  LeaseStatus reclaim(LeaseEntry& entry, std::uint64_t word, bool reply_lease, Requeue where, LaneCursor& cursor,
                      RecoveryReport* report);
  LeaseStatus reclaim_leased(const LeaseToken& lease, Requeue where, LaneCursor& cursor);
  bool is_reply_lane(std::uint16_t lane) const {
    return lane % tenant_.shape().lanes_per_instance == kReplyLane;
  }

  const BusMemory& memory_;
  Tenant& tenant_;
  std::uint16_t type_;
  std::uint32_t member_;
};

}  // namespace exobus::shm
