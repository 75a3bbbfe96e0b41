#pragma once
// The daemon's half of the data plane: it repairs what a dead instance left half done, and
// requeues leases past their deadline. Services never run it. Every repair is idempotent,
// so a daemon killed in the middle of one is followed by one that simply does it again
// (FaultPoint::recovery_step).
#include <cstdint>

#include "exobus/shm/data_plane.hpp"

namespace exobus::shm {

struct RecoveryReport {
  std::uint32_t undelivered_targets = 0;  // targets of an interrupted send, released
  std::uint32_t tombstones = 0;           // unpublished ring claims turned into tombstones
  std::uint32_t reads_resolved = 0;       // half-taken slots handed back
  std::uint32_t leases_requeued = 0;
  std::uint32_t dead_lettered = 0;
  std::uint32_t chunks_reclaimed = 0;  // allocated, never published
  std::uint32_t pending = 0;           // work left for a later pass (a ring was full)
};

class Recovery {
 public:
  // Works through `recoverer`, the daemon's own lane (copies it pushes record it as owner).
  Recovery(DataPlane& plane, LaneCursor& recoverer) : plane_(plane), recoverer_(recoverer) {}

  // Puts back everything the dead `instance` held: its interrupted sends, its ring claims,
  // its half-taken slots, its leases and its unpublished chunks. report.pending > 0: a ring
  // was full; run it again later.
  RecoveryReport recover_instance(std::uint32_t instance);
  // Requeues every lease past its deadline, and finishes RECLAIMING leases left by a full ring.
  RecoveryReport reclaim_expired(std::uint32_t now_ms);

 private:
  DataPlane& plane_;
  LaneCursor& recoverer_;
};

}  // namespace exobus::shm
