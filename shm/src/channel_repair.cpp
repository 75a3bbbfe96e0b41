#include "exobus/shm/channel_repair.hpp"

namespace exobus::shm {

namespace {

// Whether a slot's two words form one of the pairs of channel.hpp's table.
bool legal_pair(const ProducerWord& produced, const ConsumerWord& consumed) {
  switch (produced.kind) {
    case ProducerKind::free:
      return produced.lap == 0 && consumed == ConsumerWord{0, ConsumerKind::idle, 0};
    case ProducerKind::writing:
      return consumed.kind == ConsumerKind::idle && consumed.lap == produced.lap && consumed.owner == 0;
    case ProducerKind::full:
      if (consumed.kind == ConsumerKind::reading) return consumed.lap == produced.lap;
      return consumed.kind == ConsumerKind::idle && consumed.owner == 0 &&
             (consumed.lap == produced.lap || consumed.lap == produced.lap + 1);
    case ProducerKind::tombstone:
      return consumed.kind == ConsumerKind::idle && consumed.owner == 0 &&
             (consumed.lap == produced.lap || consumed.lap == produced.lap + 1);
  }
  return false;
}

}  // namespace

ChannelRepair::Inspection ChannelRepair::inspect(const Channel& channel) {
  Inspection seen;
  seen.head = channel.head_->head.load(std::memory_order_acquire);
  seen.tail = channel.tail_->tail.load(std::memory_order_acquire);
  const std::int64_t apart = static_cast<std::int64_t>(seen.tail - seen.head);
  const std::int64_t capacity = channel.capacity();
  // Either hint may lag the slots by the claims in flight (at most one per lane, fewer
  // than the capacity), so the tail may trail the head a little; more is damage.
  if (apart > capacity + capacity || apart < -capacity) {
    seen.damaged = true;
    seen.problem = "head " + std::to_string(seen.head) + " and tail " + std::to_string(seen.tail) +
                   " are further apart than the capacity (" + std::to_string(capacity) + ")";
    return seen;
  }
  const std::uint32_t tail_lap = channel.lap_of(seen.tail);
  for (std::uint32_t index = 0; index <= channel.mask_; ++index) {
    const std::uint64_t producer_word = channel.producers_[index].state.load(std::memory_order_acquire);
    const ConsumerWord consumed =
        ConsumerWord::decode(channel.consumers_[index].state.load(std::memory_order_acquire));
    // The two words are read one after the other: a slot whose producer word moved
    // meanwhile is in use, and a pair read across a move may look illegal.
    if (channel.producers_[index].state.load(std::memory_order_acquire) != producer_word) continue;
    const ProducerWord produced = ProducerWord::decode(producer_word);
    if (!legal_pair(produced, consumed)) {
      seen.damaged = true;
      seen.problem = "slot " + std::to_string(index) + " holds a pair of states the protocol never makes";
      return seen;
    }
    // A slot never used is FREE at lap 0, and only ahead of the tail in its first lap.
    if (produced.kind == ProducerKind::free) {
      if (tail_lap == 0 && index >= (seen.tail & channel.mask_)) continue;
      seen.damaged = true;
      seen.problem = "slot " + std::to_string(index) + " looks never used, behind the tail";
      return seen;
    }
    // A used slot is at the tail's lap, the one before, or (claimed past a lagging tail)
    // the one after.
    const std::int32_t behind = Channel::lap_difference(tail_lap, produced.lap);
    if (behind > 2 || behind < -1) {
      seen.damaged = true;
      seen.problem = "slot " + std::to_string(index) + " is at lap " + std::to_string(produced.lap) +
                     ", out of reach of the tail's lap " + std::to_string(tail_lap);
      return seen;
    }
  }
  return seen;
}

void ChannelRepair::reset(Channel& channel) {
  const std::uint64_t head = channel.head_->head.load(std::memory_order_acquire);
  const std::uint64_t tail = channel.tail_->tail.load(std::memory_order_acquire);
  // Beyond both hints and on a lap boundary, two laps on: slot i then serves fresh_start + i.
  const std::uint64_t furthest = static_cast<std::int64_t>(tail - head) > 0 ? tail : head;
  const std::uint64_t capacity = channel.capacity();
  const std::uint64_t fresh_start = (furthest & ~(capacity - 1)) + 2 * capacity;
  const std::uint32_t lap = channel.lap_of(fresh_start);
  for (std::uint32_t index = 0; index <= channel.mask_; ++index) {
    channel.consumers_[index].state.store(ConsumerWord{0, ConsumerKind::idle, lap}.encode(),
                                          std::memory_order_relaxed);
    channel.producers_[index].handle.store(0, std::memory_order_relaxed);
    channel.producers_[index].state.store(ProducerWord{0, ProducerKind::tombstone, lap - 1}.encode(),
                                          std::memory_order_relaxed);
  }
  // Release: whoever reads the new hints (acquire) sees the reset slots.
  channel.head_->head.store(fresh_start, std::memory_order_release);
  channel.tail_->tail.store(fresh_start, std::memory_order_release);
  // Sleepers wait on a signal nobody may bump while the channel was wedged.
  channel.tail_->signal.fetch_add(1, std::memory_order_release);
  futex_wake_all(channel.tail_->signal);
}

}  // namespace exobus::shm
