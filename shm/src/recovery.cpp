#include "exobus/shm/recovery.hpp"

#include <algorithm>

#include "exobus/shm/fault_point.hpp"

namespace exobus::shm {

namespace {

bool deadline_passed(std::uint32_t deadline_ms, std::uint32_t now_ms) {
  return static_cast<std::int32_t>(now_ms - deadline_ms) >= 0;
}

}  // namespace

RecoveryReport Recovery::recover_instance(std::uint32_t instance) {
  RecoveryReport report;
  const Segment& segment = plane_.segment_;
  ChunkPool& pool = plane_.pool_;
  const std::uint16_t first_lane = plane_.lane_of(instance, 0);
  const auto lane_count = static_cast<std::uint16_t>(plane_.lanes_per_instance_);

  // 1. An interrupted send: release the bit of every target it did not reach. Must run
  //    before step 2, which erases the evidence (WRITING slots) it reads.
  for (std::uint16_t lane = first_lane; lane < first_lane + lane_count; ++lane) {
    LaneHeader& header = segment.lane(lane);
    const MessageHandle handle = MessageHandle::from_word(header.send_handle.load(std::memory_order_acquire));
    if (handle.is_null()) continue;
    const std::uint32_t targets = std::min(header.target_count.load(std::memory_order_relaxed), kMaxTargets);
    for (std::uint32_t t = 0; t < targets; ++t) {
      const std::uint16_t ring = header.target_rings[t].load(std::memory_order_relaxed);
      const std::uint64_t claimed = header.claimed[t].load(std::memory_order_acquire);
      const bool delivered =
          claimed != 0 && ring < plane_.ring_count() && !segment.ring(ring).is_unpublished_claim(claimed - 1, lane);
      if (!delivered && pool.release_target(handle.with_target(t)) != TargetRelease::stale) {
        ++report.undelivered_targets;
      }
      fault_point(FaultPoint::recovery_step);
    }
    header.send_handle.store(0, std::memory_order_release);
  }
  // 2. Unpublished claims become tombstones that consumers skip.
  for (std::uint32_t ring = 0; ring < plane_.ring_count(); ++ring) {
    report.tombstones += segment.ring(ring).tombstone_writes_of(first_lane, lane_count);
  }
  // 3. Half-taken slots: a lease already holds the message, or one is made to hold it, and
  //    step 4 requeues it with the other leases. Not a push into the ring: once the tail
  //    has come round to the half-taken slot, the ring is full until that slot is freed,
  //    so the slot would wait for room it blocks itself. Before step 4, which empties the
  //    leases this step consults and fills.
  for (std::uint32_t ring = 0; ring < plane_.ring_count(); ++ring) {
    ReadyRing source = segment.ring(ring);
    report.reads_resolved += source.release_reads_of(
        first_lane, lane_count, [&](std::uint16_t lane, MessageHandle handle, std::uint8_t deliveries) {
          const LeaseTable leases = segment.lease_table(lane);
          if (leases.holds(handle) || !pool.still_pending(handle)) return true;
          // There is always a FREE entry: the taker reserved one before claiming the slot,
          // and only a lane's own (dead) thread turns its FREE entries ACTIVE.
          if (leases.park(handle, static_cast<std::uint16_t>(ring), deliveries, DataPlane::now_ms())) return true;
          // Only a corrupted lane has no FREE entry: push as a last resort.
          if (source.push(handle, one_more(deliveries), recoverer_.lane, [](std::uint64_t) {}) == PushStatus::ok) {
            return true;
          }
          ++report.pending;
          return false;
        });
  }
  // 4. Every lease goes back to its ring (deliveries + 1), or to the dead letters.
  for (std::uint16_t lane = first_lane; lane < first_lane + lane_count; ++lane) {
    segment.lease_table(lane).for_each_held([&](LeaseEntry& entry, std::uint64_t word) {
      plane_.reclaim(entry, word, DataPlane::Requeue::to_ring, recoverer_, &report);
    });
  }
  // 5. Chunks it allocated and never published.
  report.chunks_reclaimed = pool.reclaim_allocations_of(static_cast<std::uint16_t>(instance));
  return report;
}

RecoveryReport Recovery::reclaim_expired(std::uint32_t now_ms) {
  RecoveryReport report;
  for (std::uint32_t lane = 0; lane < plane_.segment_.lane_count(); ++lane) {
    plane_.segment_.lease_table(lane).for_each_held([&](LeaseEntry& entry, std::uint64_t word) {
      if (deadline_passed(LeaseState::decode(word).deadline_ms, now_ms)) {
        plane_.reclaim(entry, word, DataPlane::Requeue::to_ring, recoverer_, &report);
      }
    });
  }
  return report;
}

}  // namespace exobus::shm
