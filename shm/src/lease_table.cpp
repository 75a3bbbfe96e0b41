#include "exobus/shm/lease_table.hpp"

namespace exobus::shm {

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

bool LeaseTable::park(MessageHandle handle, std::uint8_t deliveries, std::uint32_t now_ms) const {
  for (LeaseEntry& entry : entries_) {
    std::uint64_t word = entry.state.load(std::memory_order_acquire);
    const LeaseState state = LeaseState::decode(word);
    if (state.kind != LeaseKind::free) continue;
    entry.handle.store(handle.word(), std::memory_order_relaxed);
    // RECLAIMING with a deadline already due: no consumer acks it, and if the requeue finds
    // the retry ring full, the expiry pass pushes it as soon as there is room.
    const LeaseState parked{now_ms, deliveries, LeaseKind::reclaiming, state.generation};
    if (entry.state.compare_exchange_strong(word, parked.encode(), std::memory_order_release,
                                            std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

}  // namespace exobus::shm
