#pragma once
// The daemon's half of the data plane: it finishes or undoes what a dead instance left half
// done, and requeues leases past their deadline. Services never run it. Every step is
// idempotent, so a daemon killed in the middle of one is followed by one that simply does
// it again (FaultPoint::recovery_step); a restarted daemon first recovers its own lanes.
#include <cstdint>

#include "exobus/shm/data_plane.hpp"

namespace exobus::shm {

struct RecoveryReport {
  std::uint32_t sends_completed = 0;  // interrupted sends that had committed: published
  std::uint32_t sends_undone = 0;     // interrupted sends that had not: nobody got them
  std::uint32_t tombstones = 0;       // claims never published, turned into tombstones
  std::uint32_t reads_resolved = 0;   // half-taken slots handed on
  std::uint32_t leases_requeued = 0;
  std::uint32_t dead_lettered = 0;
  std::uint32_t replies_dropped = 0;  // replies waiting for the dead instance
  std::uint32_t chunks_reclaimed = 0;  // allocated, never published
  std::uint32_t pending = 0;           // work left for a later pass (a ring was full)
  RecoveryReport& operator+=(const RecoveryReport& other);
};

class Recovery {
 public:
  // Works in memory the daemon maps whole and writable.
  explicit Recovery(const BusMemory& memory) : memory_(memory) {}

  // Puts back everything instance `member` of `type` held: its interrupted sends, its
  // channel and ring claims, its half-taken slots, its leases, its unpublished chunks, and
  // the replies waiting for it. report.pending > 0: a ring was full; run it again later.
  RecoveryReport recover_instance(std::uint16_t type, std::uint32_t member);
  // The same for the lanes a dead daemon used in every type's memory.
  RecoveryReport recover_daemon();
  // Requeues every lease past its deadline. A lease a release left RECLAIMING (its ring
  // was full) waits for its deadline too: requeued earlier, it could race the releaser's
  // own retry into a second copy.
  RecoveryReport reclaim_expired(std::uint32_t now_ms);

 private:
  void finish_sends(DataPlane& plane, std::uint16_t first, std::uint16_t count, RecoveryReport& report);
  void resolve_reads(DataPlane& plane, std::uint16_t first, std::uint16_t count, std::uint32_t member,
                     RecoveryReport& report);
  const BusMemory& memory_;
};

}  // namespace exobus::shm
