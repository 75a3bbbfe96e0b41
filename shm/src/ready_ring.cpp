#include "exobus/shm/ready_ring.hpp"

namespace exobus::shm {

void ReadyRing::initialise(RingHeader* header, RingSlot* slots, std::uint32_t capacity) {
  header->tail.store(0, std::memory_order_relaxed);
  header->head.store(0, std::memory_order_relaxed);
  header->sleepers.store(0, std::memory_order_relaxed);
  header->signal.store(0, std::memory_order_relaxed);
  for (std::uint32_t index = 0; index < capacity; ++index) {
    slots[index].state.store(SlotState{0, 0, SlotKind::empty, 0}.encode(), std::memory_order_relaxed);
    slots[index].handle.store(0, std::memory_order_relaxed);
  }
}

void ReadyRing::wake() {
  // Dekker pairing with wait(): we stored FULL (seq_cst), then read sleepers; a sleeper
  // increments sleepers, then reads the slot, both seq_cst. In the single total order of
  // seq_cst operations at least one of us sees the other: no sleeper is left behind.
  if (header_->sleepers.load(std::memory_order_seq_cst) == 0) return;  // the busy path
  header_->signal.fetch_add(1, std::memory_order_release);
  futex_wake_all(header_->signal);
}

void ReadyRing::wait(std::chrono::nanoseconds timeout) {
  header_->sleepers.fetch_add(1, std::memory_order_seq_cst);
  const std::uint32_t signal = header_->signal.load(std::memory_order_seq_cst);
  if (looks_empty()) futex_wait(header_->signal, signal, timeout);
  header_->sleepers.fetch_sub(1, std::memory_order_relaxed);
}

std::uint32_t ReadyRing::begin_sleep() const {
  header_->sleepers.fetch_add(1, std::memory_order_seq_cst);
  return header_->signal.load(std::memory_order_seq_cst);
}

void ReadyRing::end_sleep() const { header_->sleepers.fetch_sub(1, std::memory_order_relaxed); }

bool ReadyRing::looks_empty() const {
  const std::uint64_t position = header_->head.load(std::memory_order_seq_cst);
  const SlotState state = SlotState::decode(slot_at(position).state.load(std::memory_order_seq_cst));
  // READING a lap behind: a slow (or dead) consumer still holds the slot, so take() finds
  // nothing there, and nothing can be pushed past it: empty, or a consumer spins on it.
  if (state.kind == SlotKind::reading && state.lap == lap_of(position) - 1) return true;
  return state.lap == lap_of(position) && (state.kind == SlotKind::empty || state.kind == SlotKind::writing);
}

bool ReadyRing::looks_full() const {
  const std::uint64_t position = header_->tail.load(std::memory_order_acquire);
  const SlotState state = SlotState::decode(slot_at(position).state.load(std::memory_order_acquire));
  return lap_difference(state.lap, lap_of(position)) == -1 && state.kind != SlotKind::empty;
}

std::uint64_t ReadyRing::depth() const {
  const std::uint64_t head = header_->head.load(std::memory_order_acquire);
  const std::uint64_t tail = header_->tail.load(std::memory_order_acquire);
  return tail > head ? tail - head : 0;
}

std::uint32_t ReadyRing::tombstone_writes_of(std::uint16_t first_lane, std::uint16_t lane_count) {
  std::uint32_t tombstoned = 0;
  for (std::uint32_t index = 0; index <= mask_; ++index) {
    std::uint64_t word = slots_[index].state.load(std::memory_order_acquire);
    const SlotState state = SlotState::decode(word);
    if (state.kind != SlotKind::writing || static_cast<std::uint16_t>(state.owner - first_lane) >= lane_count) {
      continue;
    }
    // seq_cst as push()'s store of FULL: a consumer asleep behind the dead claim (it looked
    // empty) must see the tombstone, or be woken below, to step past it.
    if (slots_[index].state.compare_exchange_strong(word, SlotState{0, 0, SlotKind::tombstone, state.lap}.encode(),
                                                    std::memory_order_seq_cst, std::memory_order_relaxed)) {
      ++tombstoned;
    }
  }
  if (tombstoned > 0) wake();
  return tombstoned;
}

bool ReadyRing::is_unpublished_claim(std::uint64_t position, std::uint16_t lane) const {
  const SlotState state = SlotState::decode(slot_at(position).state.load(std::memory_order_acquire));
  return state.kind == SlotKind::writing && state.owner == lane && state.lap == lap_of(position);
}

ReadyRing::Census ReadyRing::census() const {
  Census census;
  for (std::uint32_t index = 0; index <= mask_; ++index) {
    switch (SlotState::decode(slots_[index].state.load(std::memory_order_acquire)).kind) {
      case SlotKind::empty: ++census.empty; break;
      case SlotKind::writing: ++census.writing; break;
      case SlotKind::full: ++census.full; break;
      case SlotKind::reading: ++census.reading; break;
      case SlotKind::tombstone: ++census.tombstone; break;
      default: ++census.corrupt; break;
    }
  }
  return census;
}

}  // namespace exobus::shm
