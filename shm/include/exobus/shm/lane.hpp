#pragma once
// A lane is one thread's seat on the bus: the record of the send it is doing and the
// leases of the messages it took (lease_table.hpp). Every ring slot a thread claims carries
// its lane id, so recovery of a dead process visits exactly its lanes (lane id = instance *
// lanes per instance + k). Only the lane's thread writes its send record and takes into its
// lease table; acks may come from any thread of the instance, expiry from the daemon, so
// lease state changes are CAS.
//
//  LaneHeader (384 bytes, six cache lines), the send record
//  0               8       12                      76    80                      336    384
//  +---------------+-------+-----------------------+-----+-----------------------+------+
//  |  send handle  |targets| target rings[32], 2 B | pad | claimed[32], 8 B each | pad  |
//  +---------------+-------+-----------------------+-----+-----------------------+------+
//  send handle:  the chunk being sent (0 = no send in progress). Written (release) after the
//                targets below and before the chunk is published; cleared when done.
//  targets:      target count and ring of each target t (its bit t in the chunk's mask).
//  claimed:      per target, ring position + 1 once the ring slot is claimed (0 = not yet).
//  All written by the lane's own thread only; read by recovery once its process is dead.
//  Recovery of a dead lane with a send in progress: target t was delivered iff it has a
//  claimed position whose slot is no longer WRITING by this lane; every other target's bit
//  is cleared in the chunk so the chunk is freed when the delivered targets ack.
//
// A lane's lease table follows its header in the segment (Segment::leases).
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "exobus/shm/lease_table.hpp"
#include "exobus/shm/message_handle.hpp"

namespace exobus::shm {

struct alignas(64) LaneHeader {
  std::atomic<std::uint64_t> send_handle;
  std::atomic<std::uint32_t> target_count;
  std::atomic<std::uint16_t> target_rings[kMaxTargets];
  std::atomic<std::uint64_t> claimed[kMaxTargets];
};
static_assert(sizeof(LaneHeader) == 384 && alignof(LaneHeader) == 64 && std::is_standard_layout_v<LaneHeader>);
static_assert(offsetof(LaneHeader, send_handle) == 0 && offsetof(LaneHeader, target_count) == 8 &&
              offsetof(LaneHeader, target_rings) == 12 && offsetof(LaneHeader, claimed) == 80);

}  // namespace exobus::shm
