#pragma once
// A lane is one thread's seat on the bus: the record of the send it is doing and the
// leases of the messages it took. Every ring slot a thread claims carries its lane id, so
// recovery of a dead process visits exactly its lanes (lane id = instance * lanes per
// instance + k). Only the lane's thread writes its send record and takes into its lease
// table; acks may come from any thread of the instance, expiry from the daemon, so lease
// state changes are CAS.
//
//  SendRecord (in LaneHeader)
//  handle:   the chunk being sent (0 = no send in progress). Written (release) after the
//            targets below and before the chunk is published; cleared when done.
//  targets:  target count and ring of each target t (its bit t in the chunk's mask).
//  claimed:  per target, ring position + 1 once the ring slot is claimed (0 = not yet).
//  Recovery of a dead lane with a send in progress: target t was delivered iff it has a
//  claimed position whose slot is no longer WRITING by this lane; every other target's bit
//  is cleared in the chunk so the chunk is freed when the delivered targets ack.
//
//  LeaseEntry (32 bytes, two to a cache line)
//  0               8               16      20                               32
//  +---------------+---------------+-------+--------------------------------+
//  |  state        |  handle       | ring  |  unused                        |
//  +---------------+---------------+-------+--------------------------------+
//  handle, ring: written by the lane's thread before it stores ACTIVE (release).
//
//  LeaseState (8 bytes)
//  0                               32        40     44                      64
//  +-------------------------------+---------+------+-----------------------+
//  |  deadline (ms, mod 2^32)      |deliver. | kind |  generation (20 bits) |
//  +-------------------------------+---------+------+-----------------------+
//  FREE -> ACTIVE (take) -> FREE (ack, generation + 1)
//  ACTIVE -> RECLAIMING (release, reject, expiry, recovery) -> FREE (generation + 1) once
//  the copy is pushed. A lease token carries the generation, so an ack of a lease that was
//  reclaimed (and maybe reused) fails its CAS and is ignored: a late ack is harmless.
#include <atomic>
#include <cstdint>

#include "exobus/shm/message_handle.hpp"

namespace exobus::shm {

enum class LeaseKind : std::uint8_t { free = 0, active = 1, reclaiming = 2 };
inline constexpr std::uint32_t kLeaseGenerationMask = (1u << 20) - 1;

struct LeaseState {
  std::uint32_t deadline_ms;
  std::uint8_t deliveries;
  LeaseKind kind;
  std::uint32_t generation;

  static constexpr LeaseState decode(std::uint64_t word) {
    return {static_cast<std::uint32_t>(word), static_cast<std::uint8_t>(word >> 32),
            static_cast<LeaseKind>((word >> 40) & 0xf),
            static_cast<std::uint32_t>(word >> 44) & kLeaseGenerationMask};
  }
  constexpr std::uint64_t encode() const {
    return std::uint64_t{deadline_ms} | (std::uint64_t{deliveries} << 32) |
           (std::uint64_t{static_cast<std::uint8_t>(kind)} << 40) |
           (std::uint64_t{generation & kLeaseGenerationMask} << 44);
  }
};

struct LeaseEntry {
  std::atomic<std::uint64_t> state;
  std::atomic<std::uint64_t> handle;
  std::atomic<std::uint32_t> ring;
  std::uint8_t unused[12];
};
static_assert(sizeof(LeaseEntry) == 32 && std::is_standard_layout_v<LeaseEntry>);

struct alignas(64) LaneHeader {
  std::atomic<std::uint64_t> send_handle;
  std::atomic<std::uint32_t> target_count;
  std::atomic<std::uint16_t> target_rings[kMaxTargets];
  std::atomic<std::uint64_t> claimed[kMaxTargets];
};
static_assert(sizeof(LaneHeader) == 384 && alignof(LaneHeader) == 64);

// Identifies one lease for ack/release/reject/renew: lane, entry and its generation.
// As one word, for keeping outside shared memory:
//  0                       24                      48              64
//  +-----------------------+-----------------------+---------------+
//  |  generation           |  entry                |  lane         |
//  +-----------------------+-----------------------+---------------+
struct LeaseToken {
  std::uint16_t lane = 0;
  std::uint32_t entry = 0;
  std::uint32_t generation = 0;

  constexpr std::uint64_t word() const {
    return std::uint64_t{lane} << 48 | std::uint64_t{entry & 0xffffff} << 24 | (generation & 0xffffff);
  }
  static constexpr LeaseToken from_word(std::uint64_t word) {
    return {static_cast<std::uint16_t>(word >> 48), static_cast<std::uint32_t>(word >> 24) & 0xffffff,
            static_cast<std::uint32_t>(word) & 0xffffff};
  }
  friend bool operator==(const LeaseToken&, const LeaseToken&) = default;
};

}  // namespace exobus::shm
