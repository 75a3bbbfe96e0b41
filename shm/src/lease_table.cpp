#include "exobus/shm/lease_table.hpp"

namespace exobus::shm {

std::optional<LeaseTable::Reserved> LeaseTable::reserve(std::uint32_t from) const {
  const std::uint32_t count = size();
  for (std::uint32_t scanned = 0; scanned < count; ++scanned) {
    const std::uint32_t index = (from + scanned) % count;
    const LeaseState state = LeaseState::decode(entries_[index].state.load(std::memory_order_acquire));
    if (state.kind == LeaseKind::free) return Reserved{index, state.generation};
  }
  return std::nullopt;
}

std::uint64_t LeaseTable::activate(const Reserved& reserved, MessageHandle handle, std::uint16_t ring,
                                   std::uint32_t deadline_ms, std::uint8_t deliveries) const {
  LeaseEntry& entry = entries_[reserved.index];
  entry.handle.store(handle.word(), std::memory_order_release);  // see active_handle()
  entry.ring.store(ring, std::memory_order_relaxed);
  const std::uint64_t active = LeaseState{deadline_ms, deliveries, LeaseKind::active, reserved.generation}.encode();
  // Release: handle and ring are visible to whoever acquires ACTIVE (recovery, expiry).
  entry.state.store(active, std::memory_order_release);
  return active;
}

void LeaseTable::drop(const Reserved& reserved, std::uint64_t active_word) const {
  entries_[reserved.index].state.compare_exchange_strong(active_word, LeaseState::decode(active_word).freed(),
                                                         std::memory_order_release, std::memory_order_relaxed);
}

std::optional<MessageHandle> LeaseTable::active_handle(const LeaseToken& token, std::uint64_t& word) const {
  const LeaseEntry* entry = find(token);
  if (entry == nullptr) return std::nullopt;
  word = entry->state.load(std::memory_order_acquire);
  LeaseState state = LeaseState::decode(word);
  if (state.kind != LeaseKind::active || state.generation != token.generation) return std::nullopt;
  // Seqlock-style re-check: the handle read belongs to this lease only if the state is
  // still ACTIVE with our generation after reading it. The acquire pairs with the taker's
  // release store of a newer handle, which it made after seeing the entry FREE: reading
  // that newer handle guarantees the re-check sees the generation change.
  const MessageHandle handle = MessageHandle::from_word(entry->handle.load(std::memory_order_acquire));
  word = entry->state.load(std::memory_order_relaxed);
  state = LeaseState::decode(word);
  if (state.kind != LeaseKind::active || state.generation != token.generation) return std::nullopt;
  return handle;
}

bool LeaseTable::free_active(const LeaseToken& token, std::uint64_t word) const {
  LeaseEntry* entry = find(token);
  if (entry == nullptr) return false;
  const std::uint64_t freed = LeaseState::decode(word).freed();
  while (!entry->state.compare_exchange_weak(word, freed, std::memory_order_release, std::memory_order_relaxed)) {
    const LeaseState state = LeaseState::decode(word);
    // A renew changed the deadline: retry. A reclaim won: the lease is no longer ours to free.
    if (state.kind != LeaseKind::active || state.generation != token.generation) return false;
  }
  return true;
}

bool LeaseTable::mark_reclaiming(LeaseEntry& entry, std::uint64_t& word) {
  LeaseState state = LeaseState::decode(word);
  if (state.kind != LeaseKind::active) return state.kind == LeaseKind::reclaiming;
  state.kind = LeaseKind::reclaiming;
  // Winning this CAS makes us the only one to move the message: acks and renews expect
  // ACTIVE and fail from here on.
  if (!entry.state.compare_exchange_strong(word, state.encode(), std::memory_order_acq_rel,
                                           std::memory_order_relaxed)) {
    return false;
  }
  word = state.encode();
  return true;
}

void LeaseTable::free_reclaimed(LeaseEntry& entry, std::uint64_t reclaiming_word) {
  entry.state.compare_exchange_strong(reclaiming_word, LeaseState::decode(reclaiming_word).freed(),
                                      std::memory_order_release, std::memory_order_relaxed);
}

bool LeaseTable::holds(MessageHandle handle) const {
  for (const LeaseEntry& entry : entries_) {
    if (LeaseState::decode(entry.state.load(std::memory_order_acquire)).held() &&
        entry.handle.load(std::memory_order_relaxed) == handle.word()) {
      return true;
    }
  }
  return false;
}

bool LeaseTable::park(MessageHandle handle, std::uint16_t ring, std::uint8_t deliveries, std::uint32_t now_ms) const {
  for (LeaseEntry& entry : entries_) {
    std::uint64_t word = entry.state.load(std::memory_order_acquire);
    const LeaseState state = LeaseState::decode(word);
    if (state.kind != LeaseKind::free) continue;
    entry.handle.store(handle.word(), std::memory_order_relaxed);
    entry.ring.store(ring, std::memory_order_relaxed);
    // RECLAIMING with a deadline already due: no consumer acks it, and if the requeue finds
    // its ring full, the expiry pass pushes it as soon as there is room.
    const LeaseState parked{now_ms, deliveries, LeaseKind::reclaiming, state.generation};
    if (entry.state.compare_exchange_strong(word, parked.encode(), std::memory_order_release,
                                            std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

}  // namespace exobus::shm
