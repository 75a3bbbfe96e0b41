#pragma once
// A lane is one thread's seat in its service type's tenant memory (tenant.hpp): the record
// of the send it is doing and the leases of the messages it took (lease_table.hpp). Every
// channel slot a thread claims carries its lane, so the daemon's recovery of a dead
// instance visits exactly its lanes (lane = instance * lanes per instance + k, counted in
// the type; the daemon has lanes of its own after the last instance's).
//
//  SendRecord (64 + 32 x 32 = 1088 bytes), written by the lane's own thread only and read
//  by recovery once its process is dead.
//  0        4        8                                                    64
//  +--------+--------+----------------------------------------------------+
//  | phase  |targets |                                                    |
//  +--------+--------+----------------------------------------------------+
//  | SendTarget[32]: handle (8), claimed position + 1 (8), link (4), channel (4), 8 unused
//  +------------------------------------------------------------------------...
//
// A send to several types is all or nothing: one chunk per target (each in its own link),
// every target's channel slot claimed, and only then the commit, after which every target
// is published. The steps, and what the daemon does with a death at each:
//   1. chunks allocated and written          ALLOCATED(owner): freed by the owner's recovery
//   2. targets recorded, phase CLAIMING      as 1
//   3. a slot claimed per target, recorded   CLAIMING: claims tombstoned, chunks freed;
//      (any full: the claims tombstoned,     nothing was delivered
//      the chunks freed, nothing sent)
//   4. chunks published, phase COMMITTED     COMMITTED: every claim still WRITING is
//                                            published from the record: all delivered
//   5. every slot published (FULL)           as 4 (the ones done are done)
//   6. phase IDLE                            nothing to do
// So a send that failed reached no type, and one that committed reaches every type once,
// also when its sender dies half way.
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "exobus/shm/message_handle.hpp"

namespace exobus::shm {

inline constexpr std::uint32_t kMaxTargets = 32;
// Which channel of a link a send target uses: the type channel, or reply channel r as r + 1.
inline constexpr std::uint32_t kTypeChannel = 0;

enum class SendPhase : std::uint32_t { idle = 0, claiming = 1, committed = 2 };

struct SendTarget {
  std::atomic<std::uint64_t> handle;
  std::atomic<std::uint64_t> claimed;  // position + 1 once the slot is claimed; 0 before
  std::atomic<std::uint32_t> link;
  std::atomic<std::uint32_t> channel;  // kTypeChannel, or reply channel + 1
  std::uint64_t unused;
};
static_assert(sizeof(SendTarget) == 32 && offsetof(SendTarget, claimed) == 8 && offsetof(SendTarget, link) == 16 &&
              offsetof(SendTarget, channel) == 20);

struct alignas(64) SendRecord {
  std::atomic<std::uint32_t> phase;
  std::atomic<std::uint32_t> target_count;
  alignas(64) SendTarget targets[kMaxTargets];
};
static_assert(sizeof(SendRecord) == 1088 && alignof(SendRecord) == 64 && std::is_standard_layout_v<SendRecord>);
static_assert(offsetof(SendRecord, phase) == 0 && offsetof(SendRecord, target_count) == 4 &&
              offsetof(SendRecord, targets) == 64);

}  // namespace exobus::shm
