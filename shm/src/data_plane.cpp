#include "exobus/shm/data_plane.hpp"

#include <ctime>

#include "exobus/shm/fault_point.hpp"
#include "exobus/shm/recovery.hpp"

namespace exobus::shm {

DataPlane::DataPlane(const BusMemory& memory, std::uint16_t type, std::uint32_t member)
    : memory_(memory), tenant_(*memory.tenant(type)), type_(type), member_(member) {}

std::uint32_t DataPlane::now_ms() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  return static_cast<std::uint32_t>(static_cast<std::uint64_t>(now.tv_sec) * 1000 +
                                    static_cast<std::uint64_t>(now.tv_nsec) / 1000000);
}

Allocation DataPlane::allocate(Link& link, std::size_t size) { return link.pool().allocate(size, member_); }

void DataPlane::abandon(Link& link, MessageHandle handle) { link.pool().abandon(handle, member_); }

Channel* DataPlane::channel_of(const Destination& to) const {
  if (to.link == nullptr || to.link->sender() != type_) return nullptr;
  if (to.channel == kTypeChannel) return to.link->has_type_channel() ? &to.link->type_channel() : nullptr;
  return to.link->reply_channel(to.channel - 1);
}

Link* DataPlane::incoming(MessageHandle handle) const {
  Link* link = memory_.link(handle.link());
  return link != nullptr && link->receiver() == type_ ? link : nullptr;
}

SendResult DataPlane::publish(LaneCursor& cursor, std::span<const Part> parts) {
  const auto count = static_cast<std::uint32_t>(parts.size());
  if (count == 0 || count > kMaxTargets) return {SendStatus::too_many_targets};
  Channel* channels[kMaxTargets];
  for (std::uint32_t t = 0; t < count; ++t) {
    channels[t] = channel_of(parts[t].to);
    if (channels[t] == nullptr) return {SendStatus::corrupted, t};
  }
  SendRecord& record = tenant_.send_record(cursor.lane);
  for (std::uint32_t t = 0; t < count; ++t) {
    SendTarget& target = record.targets[t];
    target.handle.store(parts[t].handle.word(), std::memory_order_relaxed);
    target.claimed.store(0, std::memory_order_relaxed);
    target.link.store(parts[t].to.link->index(), std::memory_order_relaxed);
    target.channel.store(parts[t].to.channel, std::memory_order_relaxed);
  }
  record.target_count.store(count, std::memory_order_relaxed);
  // Release: recovery that sees CLAIMING also sees the targets and their cleared claims.
  record.phase.store(static_cast<std::uint32_t>(SendPhase::claiming), std::memory_order_release);

  std::uint64_t positions[kMaxTargets];
  for (std::uint32_t t = 0; t < count; ++t) {
    if (t > 0) fault_point(FaultPoint::send_between_targets);
    const Claim claim = channels[t]->claim(cursor.lane);
    if (claim.status != ClaimStatus::ok) {
      // Nothing is visible yet: the claims made so far become tombstones, the chunks stay
      // the caller's.
      for (std::uint32_t made = 0; made < t; ++made) channels[made]->abandon(positions[made], cursor.lane);
      record.phase.store(static_cast<std::uint32_t>(SendPhase::idle), std::memory_order_release);
      return {claim.status == ClaimStatus::full ? SendStatus::queue_full : SendStatus::corrupted, t};
    }
    positions[t] = claim.position;
    record.targets[t].claimed.store(claim.position + 1, std::memory_order_release);
    // Death here (or between claim and record): CLAIMING; recovery tombstones the claims
    // and frees the chunks. Nobody has the message.
    fault_point(FaultPoint::push_recorded);
  }
  for (std::uint32_t t = 0; t < count; ++t) parts[t].to.link->pool().publish(parts[t].handle, parts[t].length);
  // The commit: from here on every target gets the message, whoever dies.
  record.phase.store(static_cast<std::uint32_t>(SendPhase::committed), std::memory_order_release);
  // Death here: COMMITTED; recovery publishes every claim still WRITING from the record.
  fault_point(FaultPoint::send_committed);
  for (std::uint32_t t = 0; t < count; ++t) channels[t]->publish(positions[t], parts[t].handle);
  record.phase.store(static_cast<std::uint32_t>(SendPhase::idle), std::memory_order_release);
  return {SendStatus::ok};
}

TakeOutcome DataPlane::take(LaneCursor& cursor, Link& link, Channel& channel, std::uint32_t now_ms) {
  const LeaseTable leases = tenant_.leases(cursor.lane);
  const std::uint32_t deadline = now_ms + tenant_.shape().lease_ms;
  for (;;) {
    // Only this lane's thread turns FREE entries ACTIVE, so a FREE entry stays ours.
    const std::optional<LeaseTable::Reserved> reserved = leases.reserve(cursor.lease_cursor);
    if (!reserved) return {TakeOutcomeStatus::no_free_lease, {}};
    cursor.lease_cursor = reserved->index + 1;

    std::uint64_t active_word = 0;
    const Taken taken = channel.take(cursor.lane, [&](MessageHandle handle) {
      active_word = leases.activate(*reserved, handle, deadline, 0);
    });
    if (taken.status == TakeStatus::empty) return {TakeOutcomeStatus::empty, {}};
    if (taken.status == TakeStatus::corrupted) return {TakeOutcomeStatus::corrupted, {}};

    const ChunkView view = link.pool().read(taken.handle);
    if (view.valid) {
      return {TakeOutcomeStatus::ok,
              {taken.handle, {cursor.lane, reserved->index, reserved->generation}, 0, &link, view.payload}};
    }
    // Nothing a well-behaved sender writes: a handle into another link, or to a chunk it
    // reused before the ack. Counted, dropped.
    leases.drop(*reserved, active_word);
    count_refused(link, RefusalReason::unreadable);
  }
}

TakeOutcome DataPlane::take_retry(LaneCursor& cursor, std::uint32_t now_ms) {
  return take_from_ring(cursor, tenant_.retry_ring(), now_ms);
}

TakeOutcome DataPlane::take_dead_letter(LaneCursor& cursor, std::uint32_t now_ms) {
  return take_from_ring(cursor, tenant_.dead_letters(), now_ms);
}

TakeOutcome DataPlane::take_from_ring(LaneCursor& cursor, ReadyRing ring, std::uint32_t now_ms) {
  const LeaseTable leases = tenant_.leases(cursor.lane);
  const std::uint32_t deadline = now_ms + tenant_.shape().lease_ms;
  for (;;) {
    const std::optional<LeaseTable::Reserved> reserved = leases.reserve(cursor.lease_cursor);
    if (!reserved) return {TakeOutcomeStatus::no_free_lease, {}};
    cursor.lease_cursor = reserved->index + 1;

    std::uint64_t active_word = 0;
    const RingTaken taken = ring.take(cursor.lane, [&](MessageHandle handle, std::uint8_t deliveries) {
      active_word = leases.activate(*reserved, handle, deadline, deliveries);
    });
    if (taken.status == RingTakeStatus::empty) return {TakeOutcomeStatus::empty, {}};
    if (taken.status == RingTakeStatus::corrupted) return {TakeOutcomeStatus::corrupted, {}};

    Link* link = incoming(taken.handle);
    const ChunkView view = link != nullptr ? link->pool().read(taken.handle) : ChunkView{false, {}};
    if (view.valid) {
      return {TakeOutcomeStatus::ok,
              {taken.handle, {cursor.lane, reserved->index, reserved->generation}, taken.deliveries, link,
               view.payload}};
    }
    // A copy of a message already acknowledged (requeued by a release or a recovery that
    // raced the ack): nothing to deliver.
    leases.drop(*reserved, active_word);
  }
}

LeaseEntry* DataPlane::lease_entry(const LeaseToken& lease) const {
  const std::optional<LeaseTable> leases = tenant_.leases_of(lease.lane);
  return leases ? leases->find(lease) : nullptr;
}

LeaseStatus DataPlane::ack(const LeaseToken& lease) {
  LeaseEntry* entry = lease_entry(lease);
  if (entry == nullptr) return LeaseStatus::late;
  std::uint64_t word = 0;
  const std::optional<MessageHandle> handle = LeaseTable::active_handle(*entry, lease, word);
  if (!handle) return LeaseStatus::late;
  // Ack first, lease second. Death between the two: the lease is requeued by recovery, and
  // the copy is found acknowledged and skipped. The other order could leak the chunk.
  if (Link* link = incoming(*handle)) link->pool().acknowledge(*handle);
  fault_point(FaultPoint::ack_cleared);
  // A reclaim that won meanwhile makes the ack late, but it still counts: the message is
  // acknowledged, so the reclaimed copy is stale.
  return LeaseTable::free_active(*entry, lease, word) ? LeaseStatus::ok : LeaseStatus::late;
}

LeaseStatus DataPlane::renew(const LeaseToken& lease, std::uint32_t now_ms) {
  const std::optional<LeaseTable> leases = tenant_.leases_of(lease.lane);
  if (!leases) return LeaseStatus::late;
  return leases->renew(lease, now_ms + tenant_.shape().lease_ms) ? LeaseStatus::ok : LeaseStatus::late;
}

LeaseStatus DataPlane::release(const LeaseToken& lease, LaneCursor& cursor) {
  return reclaim_leased(lease, Requeue::to_retry, cursor);
}

LeaseStatus DataPlane::reject(const LeaseToken& lease, LaneCursor& cursor) {
  return reclaim_leased(lease, Requeue::to_dead_letters, cursor);
}

LeaseStatus DataPlane::requeue(const LeaseToken& lease, LaneCursor& cursor) {
  return reclaim_leased(lease, Requeue::as_new, cursor);
}

void DataPlane::count_refused(Link& link, RefusalReason reason) const {
  link.counters().count(reason);
  if (member_ < tenant_.shape().instances) tenant_.instance(member_).refused.fetch_add(1, std::memory_order_relaxed);
}

LeaseStatus DataPlane::reclaim_leased(const LeaseToken& lease, Requeue where, LaneCursor& cursor) {
  LeaseEntry* entry = lease_entry(lease);
  if (entry == nullptr) return LeaseStatus::late;
  const std::uint64_t word = entry->state.load(std::memory_order_acquire);
  const LeaseState state = LeaseState::decode(word);
  if (state.kind != LeaseKind::active || state.generation != lease.generation) return LeaseStatus::late;
  return reclaim(*entry, word, is_reply_lane(lease.lane), where, cursor, nullptr);
}

LeaseStatus DataPlane::reclaim(LeaseEntry& entry, std::uint64_t word, bool reply_lease, Requeue where,
                               LaneCursor& cursor, RecoveryReport* report) {
  if (!LeaseTable::mark_reclaiming(entry, word)) return LeaseStatus::late;
  const LeaseState state = LeaseState::decode(word);
  // Death here: RECLAIMING; the next recovery or expiry pass pushes the copy.
  fault_point(FaultPoint::reclaim_marked);
  const MessageHandle handle = MessageHandle::from_word(entry.handle.load(std::memory_order_relaxed));
  Link* link = incoming(handle);
  if (link != nullptr && link->pool().still_pending(handle)) {
    if (reply_lease) {
      link->pool().acknowledge(handle);  // its requester is gone or gave it up
    } else {
      const bool fresh = where == Requeue::as_new;
      const std::uint8_t deliveries = fresh ? 0 : one_more(state.deliveries);
      const bool dead = !fresh && (where == Requeue::to_dead_letters || deliveries >= tenant_.shape().delivery_limit);
      ReadyRing ring = dead ? tenant_.dead_letters() : tenant_.retry_ring();
      if (ring.push(handle, deliveries, cursor.lane, [](std::uint64_t) {}) != PushStatus::ok) {
        if (report != nullptr) ++report->pending;
        return LeaseStatus::queue_full;  // stays RECLAIMING; the expiry pass retries
      }
      if (report != nullptr) ++(dead ? report->dead_lettered : report->leases_requeued);
    }
  }
  // Death here: the copy is pushed and the lease still RECLAIMING; a later pass pushes a
  // second copy, flagged redelivered like the first.
  fault_point(FaultPoint::reclaim_pushed);
  LeaseTable::free_reclaimed(entry, word);
  return LeaseStatus::ok;
}

}  // namespace exobus::shm
