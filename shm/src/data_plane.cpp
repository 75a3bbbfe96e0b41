#include "exobus/shm/data_plane.hpp"

#include <algorithm>
#include <cstring>
#include <ctime>

#include "exobus/shm/fault_point.hpp"
#include "exobus/shm/recovery.hpp"

namespace exobus::shm {

DataPlane::DataPlane(const Segment& segment)
    : segment_(segment), pool_(segment.pool()), lanes_per_instance_(segment.layout().lanes_per_instance) {}

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
    const PushStatus pushed =
        segment_.ring(target_rings[t]).push(handle.with_target(t), 0, cursor.lane, [&](std::uint64_t position) {
          lane.claimed[t].store(position + 1, std::memory_order_release);
        });
    if (pushed != PushStatus::ok) {
      // No target from t on will get the message: release their bits (the chunk is freed
      // when the targets already reached acknowledge it, or now if there are none).
      for (std::uint32_t rest = t; rest < targets; ++rest) {
        pool_.release_target(handle.with_target(rest));
      }
      result = {pushed == PushStatus::full ? SendStatus::queue_full : SendStatus::corrupted, target_rings[t], t};
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
    return {allocation.status == PoolStatus::too_large ? SendStatus::too_large : SendStatus::pool_exhausted};
  }
  std::memcpy(allocation.buffer.data(), bytes.data(), bytes.size());
  return publish(cursor, allocation.handle, static_cast<std::uint32_t>(bytes.size()), target_rings);
}

TakeOutcome DataPlane::take(LaneCursor& cursor, std::uint16_t ring_index, std::uint32_t now_ms) {
  if (ring_index >= ring_count()) return {TakeOutcomeStatus::corrupted, {}};
  const LeaseTable leases = segment_.lease_table(cursor.lane);
  const RingDescriptor& descriptor = segment_.ring_descriptor(ring_index);
  ReadyRing ring = segment_.ring(ring_index);

  for (;;) {
    // Only this lane's thread turns FREE entries ACTIVE, so a FREE entry stays ours.
    const std::optional<LeaseTable::Reserved> reserved = leases.reserve(cursor.lease_cursor);
    if (!reserved) return {TakeOutcomeStatus::no_free_lease, {}};
    cursor.lease_cursor = reserved->index + 1;

    std::uint64_t active_word = 0;
    const Taken taken = ring.take(cursor.lane, [&](MessageHandle handle, std::uint8_t deliveries) {
      active_word = leases.activate(*reserved, handle, ring_index, now_ms + descriptor.lease_ms, deliveries);
    });
    if (taken.status == TakeStatus::empty) return {TakeOutcomeStatus::empty, {}};
    if (taken.status == TakeStatus::corrupted) return {TakeOutcomeStatus::corrupted, {}};

    const ChunkView view = pool_.read(taken.handle);
    if (view.valid) {
      return {TakeOutcomeStatus::ok,
              {taken.handle,
               {cursor.lane, reserved->index, reserved->generation},
               taken.deliveries,
               ring_index,
               view.payload}};
    }
    // A copy of a message already acknowledged (requeued by a release or a recovery that
    // raced the ack), or a corrupt handle: nothing to deliver.
    leases.drop(*reserved, active_word);
  }
}

LeaseStatus DataPlane::ack(const LeaseToken& lease) {
  LeaseEntry* entry = lease_entry(lease);
  if (entry == nullptr) return LeaseStatus::late;
  std::uint64_t word = 0;
  const std::optional<MessageHandle> handle = LeaseTable::active_handle(*entry, lease, word);
  if (!handle) return LeaseStatus::late;
  // Bit first, lease second. Death between the two: the lease is requeued by recovery, and
  // the copy is found stale (bit clear) and skipped. The other order could leak the chunk.
  pool_.release_target(*handle);
  fault_point(FaultPoint::ack_cleared);
  // A reclaim that won meanwhile makes the ack late, but it still counts: the bit is clear,
  // so the reclaimed copy is stale.
  return LeaseTable::free_active(*entry, lease, word) ? LeaseStatus::ok : LeaseStatus::late;
}

LeaseStatus DataPlane::renew(const LeaseToken& lease, std::uint32_t now_ms) {
  const std::optional<LeaseTable> leases = lease_table_of(lease);
  if (!leases) return LeaseStatus::late;
  const bool renewed = leases->renew(lease, [&](std::uint32_t ring) -> std::optional<std::uint32_t> {
    if (ring >= ring_count()) return std::nullopt;
    return now_ms + segment_.ring_descriptor(ring).lease_ms;
  });
  return renewed ? LeaseStatus::ok : LeaseStatus::late;
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

LeaseStatus DataPlane::reclaim(LeaseEntry& entry, std::uint64_t word, Requeue where, LaneCursor& cursor,
                               RecoveryReport* report, std::uint16_t other_ring) {
  if (!LeaseTable::mark_reclaiming(entry, word)) return LeaseStatus::late;
  const LeaseState state = LeaseState::decode(word);
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
    } else if (segment_.ring(target).push(handle, deliveries, cursor.lane, [](std::uint64_t) {}) != PushStatus::ok) {
      if (report != nullptr) ++report->pending;
      return LeaseStatus::queue_full;  // stays RECLAIMING; the expiry pass retries
    }
    if (report != nullptr) ++(dead ? report->dead_lettered : report->leases_requeued);
  }
  // Death here: the copy is pushed and the lease still RECLAIMING; a later pass pushes a
  // second copy, flagged redelivered like the first.
  fault_point(FaultPoint::reclaim_pushed);
  LeaseTable::free_reclaimed(entry, word);
  return LeaseStatus::ok;
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
    segment_.lease_table(lane).for_each_held([&](const LeaseEntry&, std::uint64_t) { ++audit.leased; });
  }
  return audit;
}

}  // namespace exobus::shm
