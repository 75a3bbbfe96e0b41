#include "exobus/shm/data_plane.hpp"

#include <algorithm>
#include <cstring>
#include <ctime>

#include "exobus/shm/fault_point.hpp"

namespace exobus::shm {

namespace {

bool deadline_passed(std::uint32_t deadline_ms, std::uint32_t now_ms) {
  return static_cast<std::int32_t>(now_ms - deadline_ms) >= 0;
}

std::uint8_t one_more(std::uint8_t deliveries) {
  return deliveries == 0xff ? deliveries : static_cast<std::uint8_t>(deliveries + 1);
}

}  // namespace

DataPlane::DataPlane(const Segment& segment)
    : segment_(segment), pool_(segment.pool()),
      lanes_per_instance_(segment.layout().lanes_per_instance) {}

std::uint32_t DataPlane::now_ms() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  return static_cast<std::uint32_t>(static_cast<std::uint64_t>(now.tv_sec) * 1000 +
                                    static_cast<std::uint64_t>(now.tv_nsec) / 1000000);
}

Allocation DataPlane::allocate(LaneCursor& cursor, std::size_t size) {
  return pool_.allocate(size, static_cast<std::uint16_t>(instance_of(cursor.lane)),
                        std::span<std::uint32_t, kMaxSizeClasses>(cursor.chunk_cursors));
}

void DataPlane::abandon(std::uint32_t instance, MessageHandle handle) {
  pool_.abandon(handle, static_cast<std::uint16_t>(instance));
}

SendResult DataPlane::publish(LaneCursor& cursor, MessageHandle handle, std::uint32_t length,
                              std::span<const std::uint16_t> target_rings) {
  const std::uint32_t targets = static_cast<std::uint32_t>(target_rings.size());
  if (targets == 0 || targets > kMaxTargets) {
    abandon(cursor, handle);
    return {targets == 0 ? SendStatus::no_targets : SendStatus::too_many_targets};
  }
  for (const std::uint16_t ring : target_rings) {
    if (ring >= ring_count()) {
      abandon(cursor, handle);
      return {SendStatus::corrupted, ring};
    }
  }
  // A fan-out checks space first so that a full type usually fails the send cleanly,
  // before any target has it. (A single target fails cleanly anyway.)
  if (targets > 1) {
    for (const std::uint16_t ring : target_rings) {
      ReadyRing target = segment_.ring(ring);
      if (target.depth() >= target.capacity()) {
        abandon(cursor, handle);
        return {SendStatus::queue_full, ring};
      }
    }
  }

  LaneHeader& lane = segment_.lane(cursor.lane);
  for (std::uint32_t t = 0; t < targets; ++t) {
    lane.target_rings[t].store(target_rings[t], std::memory_order_relaxed);
    lane.claimed[t].store(0, std::memory_order_relaxed);
  }
  lane.target_count.store(targets, std::memory_order_relaxed);
  // Release: recovery that sees this handle also sees the targets and cleared claims.
  lane.send_handle.store(handle.word(), std::memory_order_release);
  const std::uint32_t mask = targets == kMaxTargets ? ~0u : (1u << targets) - 1;
  pool_.publish(handle, length, mask);
  // Death here: published, no target pushed; recovery releases every target bit, which
  // frees the chunk.
  fault_point(FaultPoint::send_published);

  SendResult result{SendStatus::ok};
  for (std::uint32_t t = 0; t < targets; ++t) {
    if (t > 0) fault_point(FaultPoint::send_between_targets);
    const PushStatus pushed = segment_.ring(target_rings[t]).push(
        handle.with_target(t), 0, cursor.lane, [&](std::uint64_t position) {
          lane.claimed[t].store(position + 1, std::memory_order_release);
        });
    if (pushed != PushStatus::ok) {
      // No target from t on will get the message: release their bits (the chunk is freed
      // when the targets already reached acknowledge it, or now if there are none).
      for (std::uint32_t rest = t; rest < targets; ++rest) {
        pool_.release_target(handle.with_target(rest));
      }
      result = {pushed == PushStatus::full ? SendStatus::queue_full : SendStatus::corrupted,
                target_rings[t], t};
      break;
    }
    ++result.delivered_targets;
  }
  lane.send_handle.store(0, std::memory_order_release);
  return result;
}

SendResult DataPlane::send(LaneCursor& cursor, std::span<const std::byte> bytes,
                           std::span<const std::uint16_t> target_rings) {
  const Allocation allocation = allocate(cursor, bytes.size());
  if (allocation.status != PoolStatus::ok) {
    return {allocation.status == PoolStatus::too_large ? SendStatus::too_large
                                                       : SendStatus::pool_exhausted};
  }
  std::memcpy(allocation.buffer.data(), bytes.data(), bytes.size());
  return publish(cursor, allocation.handle, static_cast<std::uint32_t>(bytes.size()), target_rings);
}

TakeOutcome DataPlane::take(LaneCursor& cursor, std::uint16_t ring_index, std::uint32_t now_ms) {
  if (ring_index >= ring_count()) return {TakeOutcomeStatus::corrupted, {}};
  const std::span<LeaseEntry> leases = segment_.leases(cursor.lane);
  const std::uint32_t lease_count = static_cast<std::uint32_t>(leases.size());
  const RingDescriptor& descriptor = segment_.ring_descriptor(ring_index);
  ReadyRing ring = segment_.ring(ring_index);

  for (;;) {
    // Only this lane's thread turns FREE entries ACTIVE, so a FREE entry stays ours.
    LeaseEntry* entry = nullptr;
    std::uint32_t entry_index = 0;
    LeaseState free_state{};
    for (std::uint32_t scanned = 0; scanned < lease_count; ++scanned) {
      entry_index = (cursor.lease_cursor + scanned) % lease_count;
      free_state = LeaseState::decode(leases[entry_index].state.load(std::memory_order_acquire));
      if (free_state.kind == LeaseKind::free) {
        entry = &leases[entry_index];
        break;
      }
    }
    if (entry == nullptr) return {TakeOutcomeStatus::no_free_lease, {}};
    cursor.lease_cursor = entry_index + 1;

    const LeaseState active{now_ms + descriptor.lease_ms, 0, LeaseKind::active, free_state.generation};
    std::uint64_t active_word = 0;
    const Taken taken = ring.take(cursor.lane, [&](MessageHandle handle, std::uint8_t deliveries) {
      entry->handle.store(handle.word(), std::memory_order_release);  // see ack()
      entry->ring.store(ring_index, std::memory_order_relaxed);
      LeaseState leased = active;
      leased.deliveries = deliveries;
      active_word = leased.encode();
      // Release: handle and ring are visible to whoever acquires ACTIVE (recovery, expiry).
      entry->state.store(active_word, std::memory_order_release);
    });
    if (taken.status == TakeStatus::empty) return {TakeOutcomeStatus::empty, {}};
    if (taken.status == TakeStatus::corrupted) return {TakeOutcomeStatus::corrupted, {}};

    const ChunkView view = pool_.read(taken.handle);
    if (view.valid) {
      return {TakeOutcomeStatus::ok,
              {taken.handle, {cursor.lane, entry_index, free_state.generation}, taken.deliveries,
               ring_index, view.payload}};
    }
    // A copy of a message already acknowledged (requeued by a release or a recovery that
    // raced the ack), or a corrupt handle: nothing to deliver. Free the lease unless the
    // daemon is already reclaiming it (it will find the copy stale and free it).
    entry->state.compare_exchange_strong(
        active_word,
        LeaseState{0, 0, LeaseKind::free, (free_state.generation + 1) & kLeaseGenerationMask}.encode(),
        std::memory_order_release, std::memory_order_relaxed);
  }
}

LeaseEntry* DataPlane::lease_entry(const LeaseToken& lease) const {
  if (lease.lane >= segment_.lane_count()) return nullptr;
  const std::span<LeaseEntry> leases = segment_.leases(lease.lane);
  return lease.entry < leases.size() ? &leases[lease.entry] : nullptr;
}

LeaseStatus DataPlane::ack(const LeaseToken& lease) {
  LeaseEntry* entry = lease_entry(lease);
  if (entry == nullptr) return LeaseStatus::late;
  std::uint64_t word = entry->state.load(std::memory_order_acquire);
  LeaseState state = LeaseState::decode(word);
  if (state.kind != LeaseKind::active || state.generation != lease.generation) {
    return LeaseStatus::late;
  }
  // Seqlock-style re-check: the handle read belongs to this lease only if the state is
  // still ACTIVE with our generation after reading it. The acquire pairs with the taker's
  // release store of a newer handle, which it made after seeing the entry FREE: reading
  // that newer handle guarantees the re-check sees the generation change.
  const MessageHandle handle = MessageHandle::from_word(entry->handle.load(std::memory_order_acquire));
  word = entry->state.load(std::memory_order_relaxed);
  state = LeaseState::decode(word);
  if (state.kind != LeaseKind::active || state.generation != lease.generation) {
    return LeaseStatus::late;
  }
  // Bit first, lease second. Death between the two: the lease is requeued by recovery, and
  // the copy is found stale (bit clear) and skipped. The other order could leak the chunk.
  pool_.release_target(handle);
  fault_point(FaultPoint::ack_cleared);
  const std::uint64_t freed =
      LeaseState{0, 0, LeaseKind::free, (lease.generation + 1) & kLeaseGenerationMask}.encode();
  while (!entry->state.compare_exchange_weak(word, freed, std::memory_order_release,
                                             std::memory_order_relaxed)) {
    state = LeaseState::decode(word);
    // A renew changed the deadline: retry. A reclaim won: the ack still counts (the bit is
    // clear, so its copy is stale), only the lease is no longer ours to free.
    if (state.kind != LeaseKind::active || state.generation != lease.generation) {
      return LeaseStatus::late;
    }
  }
  return LeaseStatus::ok;
}

LeaseStatus DataPlane::renew(const LeaseToken& lease, std::uint32_t now_ms) {
  LeaseEntry* entry = lease_entry(lease);
  if (entry == nullptr) return LeaseStatus::late;
  std::uint64_t word = entry->state.load(std::memory_order_acquire);
  for (;;) {
    LeaseState state = LeaseState::decode(word);
    if (state.kind != LeaseKind::active || state.generation != lease.generation) {
      return LeaseStatus::late;
    }
    const std::uint32_t ring = entry->ring.load(std::memory_order_relaxed);
    if (ring >= ring_count()) return LeaseStatus::late;
    state.deadline_ms = now_ms + segment_.ring_descriptor(ring).lease_ms;
    if (entry->state.compare_exchange_weak(word, state.encode(), std::memory_order_release,
                                           std::memory_order_relaxed)) {
      return LeaseStatus::ok;
    }
  }
}

LeaseStatus DataPlane::release(const LeaseToken& lease, LaneCursor& cursor) {
  return reclaim_leased(lease, Requeue::to_ring, cursor, kNoRing);
}

LeaseStatus DataPlane::reject(const LeaseToken& lease, LaneCursor& cursor) {
  return reclaim_leased(lease, Requeue::to_dead_letters, cursor, kNoRing);
}

LeaseStatus DataPlane::move(const LeaseToken& lease, std::uint16_t ring, LaneCursor& cursor) {
  if (ring >= ring_count()) return LeaseStatus::late;
  return reclaim_leased(lease, Requeue::to_other_ring, cursor, ring);
}

LeaseStatus DataPlane::reclaim_leased(const LeaseToken& lease, Requeue where, LaneCursor& cursor,
                                      std::uint16_t other_ring) {
  LeaseEntry* entry = lease_entry(lease);
  if (entry == nullptr) return LeaseStatus::late;
  const std::uint64_t word = entry->state.load(std::memory_order_acquire);
  const LeaseState state = LeaseState::decode(word);
  if (state.kind != LeaseKind::active || state.generation != lease.generation) return LeaseStatus::late;
  return reclaim(*entry, word, where, cursor, nullptr, other_ring);
}

LeaseStatus DataPlane::reclaim(LeaseEntry& entry, std::uint64_t word, Requeue where,
                               LaneCursor& cursor, RecoveryReport* report, std::uint16_t other_ring) {
  LeaseState state = LeaseState::decode(word);
  if (state.kind == LeaseKind::active) {
    LeaseState marked = state;
    marked.kind = LeaseKind::reclaiming;
    // Winning this CAS makes us the only one to move the message: acks and renews
    // expect ACTIVE and fail from here on.
    if (!entry.state.compare_exchange_strong(word, marked.encode(), std::memory_order_acq_rel,
                                             std::memory_order_relaxed)) {
      return LeaseStatus::late;
    }
    word = marked.encode();
  }
  // Death here: RECLAIMING; the next recovery or expiry pass pushes the copy.
  fault_point(FaultPoint::reclaim_marked);
  const MessageHandle handle = MessageHandle::from_word(entry.handle.load(std::memory_order_relaxed));
  const std::uint32_t ring = entry.ring.load(std::memory_order_relaxed);
  if (ring < ring_count() && pool_.still_pending(handle)) {
    const bool moved = where == Requeue::to_other_ring;
    const std::uint8_t deliveries = moved ? 0 : one_more(state.deliveries);
    const RingDescriptor& descriptor = segment_.ring_descriptor(ring);
    const bool dead = !moved && (where == Requeue::to_dead_letters || deliveries >= descriptor.delivery_limit);
    const std::uint16_t target = moved  ? other_ring
                                 : dead ? descriptor.dead_letter_ring
                                        : static_cast<std::uint16_t>(ring);
    if (target == kNoRing) {
      pool_.release_target(handle);  // no dead-letter queue configured: counted, dropped
    } else if (segment_.ring(target).push(handle, deliveries, cursor.lane,
                                          [](std::uint64_t) {}) != PushStatus::ok) {
      if (report != nullptr) ++report->pending;
      return LeaseStatus::queue_full;  // stays RECLAIMING; the expiry pass retries
    }
    if (report != nullptr) ++(dead ? report->dead_lettered : report->leases_requeued);
  }
  // Death here: the copy is pushed and the lease still RECLAIMING; a later pass pushes a
  // second copy, flagged redelivered like the first.
  fault_point(FaultPoint::reclaim_pushed);
  entry.state.compare_exchange_strong(
      word, LeaseState{0, 0, LeaseKind::free, (state.generation + 1) & kLeaseGenerationMask}.encode(),
      std::memory_order_release, std::memory_order_relaxed);
  return LeaseStatus::ok;
}

bool DataPlane::lease_holds(std::uint16_t lane, MessageHandle handle) const {
  for (const LeaseEntry& entry : segment_.leases(lane)) {
    const LeaseKind kind = LeaseState::decode(entry.state.load(std::memory_order_acquire)).kind;
    if ((kind == LeaseKind::active || kind == LeaseKind::reclaiming) &&
        entry.handle.load(std::memory_order_relaxed) == handle.word()) {
      return true;
    }
  }
  return false;
}

bool DataPlane::park_in_lease(std::uint16_t lane, MessageHandle handle, std::uint16_t ring,
                              std::uint8_t deliveries) {
  for (LeaseEntry& entry : segment_.leases(lane)) {
    std::uint64_t word = entry.state.load(std::memory_order_acquire);
    const LeaseState state = LeaseState::decode(word);
    if (state.kind != LeaseKind::free) continue;
    entry.handle.store(handle.word(), std::memory_order_relaxed);
    entry.ring.store(ring, std::memory_order_relaxed);
    // RECLAIMING with a deadline already due: no consumer acks it, and if step 4 finds its
    // ring full, the expiry pass pushes it as soon as there is room.
    const LeaseState parked{now_ms(), deliveries, LeaseKind::reclaiming, state.generation};
    if (entry.state.compare_exchange_strong(word, parked.encode(), std::memory_order_release,
                                            std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

RecoveryReport DataPlane::recover_instance(std::uint32_t instance, LaneCursor& recoverer) {
  RecoveryReport report;
  const std::uint16_t first_lane = lane_of(instance, 0);
  const auto lane_count = static_cast<std::uint16_t>(lanes_per_instance_);

  // 1. An interrupted send: release the bit of every target it did not reach. Must run
  //    before step 2, which erases the evidence (WRITING slots) it reads.
  for (std::uint16_t lane = first_lane; lane < first_lane + lane_count; ++lane) {
    LaneHeader& header = segment_.lane(lane);
    const MessageHandle handle = MessageHandle::from_word(header.send_handle.load(std::memory_order_acquire));
    if (handle.is_null()) continue;
    const std::uint32_t targets = std::min(header.target_count.load(std::memory_order_relaxed), kMaxTargets);
    for (std::uint32_t t = 0; t < targets; ++t) {
      const std::uint16_t ring = header.target_rings[t].load(std::memory_order_relaxed);
      const std::uint64_t claimed = header.claimed[t].load(std::memory_order_acquire);
      const bool delivered = claimed != 0 && ring < ring_count() &&
                             !segment_.ring(ring).is_unpublished_claim(claimed - 1, lane);
      if (!delivered && pool_.release_target(handle.with_target(t)) != TargetRelease::stale) {
        ++report.undelivered_targets;
      }
      fault_point(FaultPoint::recovery_step);
    }
    header.send_handle.store(0, std::memory_order_release);
  }
  // 2. Unpublished claims become tombstones that consumers skip.
  for (std::uint32_t ring = 0; ring < ring_count(); ++ring) {
    report.tombstones += segment_.ring(ring).tombstone_writes_of(first_lane, lane_count);
  }
  // 3. Half-taken slots: a lease already holds the message, or one is made to hold it, and
  //    step 4 requeues it with the other leases. Not a push into the ring: once the tail
  //    has come round to the half-taken slot, the ring is full until that slot is freed,
  //    so the slot would wait for room it blocks itself. Before step 4, which empties the
  //    leases this step consults and fills.
  for (std::uint32_t ring = 0; ring < ring_count(); ++ring) {
    ReadyRing source = segment_.ring(ring);
    report.reads_resolved += source.release_reads_of(
        first_lane, lane_count, [&](std::uint16_t lane, MessageHandle handle, std::uint8_t deliveries) {
          if (lease_holds(lane, handle) || !pool_.still_pending(handle)) return true;
          if (park_in_lease(lane, handle, static_cast<std::uint16_t>(ring), deliveries)) return true;
          // Only a corrupted lane has no FREE entry (see park_in_lease): push as a last resort.
          if (source.push(handle, one_more(deliveries), recoverer.lane, [](std::uint64_t) {}) ==
              PushStatus::ok) {
            return true;
          }
          ++report.pending;
          return false;
        });
  }
  // 4. Every lease goes back to its ring (deliveries + 1), or to the dead letters.
  for (std::uint16_t lane = first_lane; lane < first_lane + lane_count; ++lane) {
    for (LeaseEntry& entry : segment_.leases(lane)) {
      const std::uint64_t word = entry.state.load(std::memory_order_acquire);
      const LeaseKind kind = LeaseState::decode(word).kind;
      if (kind == LeaseKind::active || kind == LeaseKind::reclaiming) {
        reclaim(entry, word, Requeue::to_ring, recoverer, &report);
      }
    }
  }
  // 5. Chunks it allocated and never published.
  report.chunks_reclaimed = pool_.reclaim_allocations_of(static_cast<std::uint16_t>(instance));
  return report;
}

RecoveryReport DataPlane::reclaim_expired(std::uint32_t now_ms, LaneCursor& recoverer) {
  RecoveryReport report;
  for (std::uint32_t lane = 0; lane < segment_.lane_count(); ++lane) {
    for (LeaseEntry& entry : segment_.leases(lane)) {
      const std::uint64_t word = entry.state.load(std::memory_order_acquire);
      const LeaseState state = LeaseState::decode(word);
      if ((state.kind == LeaseKind::active || state.kind == LeaseKind::reclaiming) &&
          deadline_passed(state.deadline_ms, now_ms)) {
        reclaim(entry, word, Requeue::to_ring, recoverer, &report);
      }
    }
  }
  return report;
}

BusAudit DataPlane::audit() const {
  BusAudit audit;
  audit.pool = pool_.audit();
  for (std::uint32_t ring = 0; ring < ring_count(); ++ring) {
    const ReadyRing::Census census = segment_.ring(ring).census();
    audit.queued += census.full;
    audit.in_flight_slots += census.writing + census.reading;
  }
  for (std::uint32_t lane = 0; lane < segment_.lane_count(); ++lane) {
    for (const LeaseEntry& entry : segment_.leases(lane)) {
      const LeaseKind kind = LeaseState::decode(entry.state.load(std::memory_order_acquire)).kind;
      if (kind == LeaseKind::active || kind == LeaseKind::reclaiming) ++audit.leased;
    }
  }
  return audit;
}

}  // namespace exobus::shm
