#include "exobus/shm/recovery.hpp"

#include <algorithm>

#include "exobus/shm/fault_point.hpp"

namespace exobus::shm {

namespace {

bool deadline_passed(std::uint32_t deadline_ms, std::uint32_t now_ms) {
  return static_cast<std::int32_t>(now_ms - deadline_ms) >= 0;
}

// Every channel of a link, the type channel first.
template <class Visit>
void for_each_channel(Link& link, Visit&& visit) {
  if (link.has_type_channel()) visit(link.type_channel());
  for (std::uint32_t r = 0; r < link.reply_channel_count(); ++r) visit(*link.reply_channel(r));
}

Channel* channel_of(Link& link, std::uint32_t channel) {
  if (channel == kTypeChannel) return link.has_type_channel() ? &link.type_channel() : nullptr;
  return link.reply_channel(channel - 1);
}

}  // namespace

RecoveryReport& RecoveryReport::operator+=(const RecoveryReport& other) {
  sends_completed += other.sends_completed;
  sends_undone += other.sends_undone;
  tombstones += other.tombstones;
  reads_resolved += other.reads_resolved;
  leases_requeued += other.leases_requeued;
  dead_lettered += other.dead_lettered;
  replies_dropped += other.replies_dropped;
  chunks_reclaimed += other.chunks_reclaimed;
  pending += other.pending;
  return *this;
}

void Recovery::finish_sends(DataPlane& plane, std::uint16_t first, std::uint16_t count, RecoveryReport& report) {
  for (std::uint16_t lane = first; lane < first + count; ++lane) {
    SendRecord& record = plane.tenant().send_record(lane);
    const auto phase = static_cast<SendPhase>(record.phase.load(std::memory_order_acquire));
    if (phase == SendPhase::idle) continue;
    const std::uint32_t targets = std::min(record.target_count.load(std::memory_order_relaxed), kMaxTargets);
    for (std::uint32_t t = 0; t < targets; ++t) {
      const SendTarget& target = record.targets[t];
      Link* link = memory_.link(target.link.load(std::memory_order_relaxed));
      if (link == nullptr || link->sender() != plane.type()) continue;  // a scribbled record: nothing of ours
      Channel* channel = channel_of(*link, target.channel.load(std::memory_order_relaxed));
      const MessageHandle handle = MessageHandle::from_word(target.handle.load(std::memory_order_relaxed));
      const std::uint64_t claimed = target.claimed.load(std::memory_order_acquire);
      if (phase == SendPhase::committed) {
        // Every target was claimed before the commit, and every chunk published.
        if (channel != nullptr && claimed != 0) channel->finish_claim(claimed - 1, lane, handle);
      } else {
        if (channel != nullptr && claimed != 0) channel->abandon(claimed - 1, lane);
        link->pool().unpublish(handle);
      }
      fault_point(FaultPoint::recovery_step);
    }
    ++(phase == SendPhase::committed ? report.sends_completed : report.sends_undone);
    record.phase.store(static_cast<std::uint32_t>(SendPhase::idle), std::memory_order_release);
  }
}

void Recovery::resolve_reads(DataPlane& plane, std::uint16_t first, std::uint16_t count, std::uint32_t member,
                             RecoveryReport& report) {
  Tenant& tenant = plane.tenant();
  LaneCursor recoverer{plane.lane(kFirstSendLane)};
  const std::uint32_t now = DataPlane::now_ms();
  // A half-taken message goes to a lease of its taker's lane (there is always a FREE entry:
  // the taker reserved one before claiming, and only the dead taker turned FREE entries
  // ACTIVE), and is requeued with that lane's other leases below. A reply is acknowledged.
  const auto resolve = [&](std::uint16_t lane, MessageHandle handle, std::uint8_t deliveries) {
    Link* link = plane.incoming(handle);
    const LeaseTable leases = tenant.leases(lane);
    if (link == nullptr || !link->pool().still_pending(handle) || leases.holds(handle)) return true;
    if (plane.is_reply_lane(lane)) {
      link->pool().acknowledge(handle);
      ++report.replies_dropped;
      return true;
    }
    if (leases.park(handle, deliveries, now)) return true;
    // Only a scribbled lane has no FREE entry: push as a last resort.
    if (tenant.retry_ring().push(handle, one_more(deliveries), recoverer.lane, [](std::uint64_t) {}) ==
        PushStatus::ok) {
      return true;
    }
    ++report.pending;
    return false;
  };
  for (std::uint32_t index = 0; index < memory_.link_slots(); ++index) {
    Link* link = memory_.link(index);
    if (link == nullptr || link->receiver() != plane.type()) continue;
    const auto resolve_channel = [&](std::uint16_t lane, MessageHandle handle) {
      // A handle into another link is the sender's scribble: nothing to hand on.
      return handle.link() != link->index() || resolve(lane, handle, 0);
    };
    if (link->has_type_channel()) {
      report.reads_resolved += link->type_channel().release_reads_of(first, count, resolve_channel);
    }
    if (Channel* replies = link->reply_channel(member)) {
      report.reads_resolved += replies->release_reads_of(first, count, resolve_channel);
    }
  }
  report.reads_resolved += tenant.retry_ring().release_reads_of(first, count, resolve);
  report.reads_resolved += tenant.dead_letters().release_reads_of(first, count, resolve);
}

RecoveryReport Recovery::recover_instance(std::uint16_t type, std::uint32_t member) {
  RecoveryReport report;
  Tenant* tenant = memory_.tenant(type);
  if (tenant == nullptr) return report;
  DataPlane plane(memory_, type, tenant->daemon_instance());
  const std::uint16_t first = tenant->lane_of(member, 0);
  const auto count = static_cast<std::uint16_t>(tenant->shape().lanes_per_instance);

  // 1. Interrupted sends: committed ones are published, the others undone. Before step 2,
  //    which tombstones the claims a committed send still has to publish.
  finish_sends(plane, first, count, report);
  // 2. Claims never published become tombstones; chunks allocated and never published
  //    are freed.
  for (std::uint32_t index = 0; index < memory_.link_slots(); ++index) {
    Link* link = memory_.link(index);
    if (link == nullptr || link->sender() != type) continue;
    for_each_channel(*link, [&](Channel& channel) { report.tombstones += channel.tombstone_writes_of(first, count); });
    if (member < tenant->shape().instances) report.chunks_reclaimed += link->pool().reclaim_allocations_of(member);
  }
  report.tombstones += tenant->retry_ring().tombstone_writes_of(first, count);
  report.tombstones += tenant->dead_letters().tombstone_writes_of(first, count);
  // 3. Half-taken slots. Before step 4, which empties the leases this step consults and
  //    fills.
  resolve_reads(plane, first, count, member, report);
  // 4. Every lease goes to the retry ring (deliveries + 1), or to the dead letters; the
  //    leases of replies are acknowledged.
  LaneCursor recoverer{plane.lane(kFirstSendLane)};
  for (std::uint16_t lane = first; lane < first + count; ++lane) {
    const bool replies = plane.is_reply_lane(lane);
    tenant->leases(lane).for_each_held([&](LeaseEntry& entry, std::uint64_t word) {
      plane.reclaim(entry, word, replies, DataPlane::Requeue::to_retry, recoverer, &report);
    });
  }
  // 5. Replies still waiting for it would only wait for the next instance in its slot,
  //    which never asked for them.
  if (member < tenant->shape().instances) {
    LaneCursor drainer{plane.lane(kReplyLane)};
    for (std::uint32_t index = 0; index < memory_.link_slots(); ++index) {
      Link* link = memory_.link(index);
      Channel* replies = link != nullptr && link->receiver() == type ? link->reply_channel(member) : nullptr;
      if (replies == nullptr) continue;
      for (;;) {
        const TakeOutcome taken = plane.take(drainer, *link, *replies, DataPlane::now_ms());
        if (taken.status != TakeOutcomeStatus::ok) break;
        plane.ack(taken.delivery.lease);
        ++report.replies_dropped;
      }
    }
  }
  return report;
}

RecoveryReport Recovery::recover_daemon() {
  RecoveryReport report;
  for (std::uint16_t type = 0; type < memory_.type_slots(); ++type) {
    if (Tenant* tenant = memory_.tenant(type)) report += recover_instance(type, tenant->daemon_instance());
  }
  return report;
}

RecoveryReport Recovery::reclaim_expired(std::uint32_t now_ms) {
  RecoveryReport report;
  for (std::uint16_t type = 0; type < memory_.type_slots(); ++type) {
    Tenant* tenant = memory_.tenant(type);
    if (tenant == nullptr) continue;
    DataPlane plane(memory_, type, tenant->daemon_instance());
    LaneCursor recoverer{plane.lane(kFirstSendLane)};
    for (std::uint16_t lane = 0; lane < tenant->lane_count(); ++lane) {
      const bool replies = plane.is_reply_lane(lane);
      tenant->leases(lane).for_each_held([&](LeaseEntry& entry, std::uint64_t word) {
        if (deadline_passed(LeaseState::decode(word).deadline_ms, now_ms)) {
          plane.reclaim(entry, word, replies, DataPlane::Requeue::to_retry, recoverer, &report);
        }
      });
    }
  }
  return report;
}

}  // namespace exobus::shm
