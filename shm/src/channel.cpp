#include "exobus/shm/channel.hpp"

namespace exobus::shm {

namespace {

constexpr std::uint64_t align_to_line(std::uint64_t bytes) { return (bytes + 63) / 64 * 64; }

}  // namespace

std::uint64_t Channel::producer_bytes(std::uint32_t capacity) {
  return sizeof(ChannelTail) + align_to_line(std::uint64_t{capacity} * sizeof(ProducerSlot));
}

std::uint64_t Channel::consumer_bytes(std::uint32_t capacity) {
  return sizeof(ChannelHead) + align_to_line(std::uint64_t{capacity} * sizeof(ConsumerSlot));
}

void Channel::abandon(std::uint64_t position, std::uint16_t lane) {
  ProducerSlot& slot = producer_at(position);
  std::uint64_t claimed = ProducerWord{lane, ProducerKind::writing, lap_of(position)}.encode();
  // seq_cst as publish(): a sleeping consumer must see the tombstone to step past it.
  if (slot.state.compare_exchange_strong(claimed, ProducerWord{0, ProducerKind::tombstone, lap_of(position)}.encode(),
                                         std::memory_order_seq_cst, std::memory_order_relaxed)) {
    wake();
  }
}

bool Channel::looks_full() const {
  const std::uint64_t position = tail_->tail.load(std::memory_order_acquire);
  const ProducerWord produced = ProducerWord::decode(producer_at(position).state.load(std::memory_order_acquire));
  const ConsumerWord consumed = ConsumerWord::decode(consumer_at(position).state.load(std::memory_order_acquire));
  const std::uint32_t lap = lap_of(position);
  return lap_difference(produced.lap, lap) == -1 && produced.kind != ProducerKind::free && consumed.lap == lap - 1;
}

bool Channel::looks_empty() const {
  const std::uint64_t position = head_->head.load(std::memory_order_seq_cst);
  const std::uint32_t lap = lap_of(position);
  const ConsumerWord consumed = ConsumerWord::decode(consumer_at(position).state.load(std::memory_order_seq_cst));
  if (consumed.kind == ConsumerKind::reading && consumed.lap == lap - 1) return true;
  if (consumed.kind != ConsumerKind::idle || consumed.lap != lap) return false;  // taken, stale or corrupt: look
  const ProducerWord produced = ProducerWord::decode(producer_at(position).state.load(std::memory_order_seq_cst));
  const bool ready = (produced.kind == ProducerKind::full || produced.kind == ProducerKind::tombstone) &&
                     produced.lap == lap;
  return !ready;
}

std::uint32_t Channel::begin_sleep() const {
  head_->sleepers.fetch_add(SleeperCount::put(1) | SleepsBegun::put(1), std::memory_order_seq_cst);
  return tail_->signal.load(std::memory_order_seq_cst);
}

void Channel::end_sleep() const { head_->sleepers.fetch_sub(1, std::memory_order_relaxed); }

std::uint64_t Channel::depth() const {
  const std::uint64_t head = head_->head.load(std::memory_order_acquire);
  const std::uint64_t tail = tail_->tail.load(std::memory_order_acquire);
  if (tail <= head) return 0;
  return std::min<std::uint64_t>(tail - head, capacity());
}

std::uint32_t Channel::tombstone_writes_of(std::uint16_t first, std::uint16_t count) {
  std::uint32_t tombstoned = 0;
  for (std::uint32_t index = 0; index <= mask_; ++index) {
    std::uint64_t word = producers_[index].state.load(std::memory_order_acquire);
    const ProducerWord produced = ProducerWord::decode(word);
    if (produced.kind != ProducerKind::writing || static_cast<std::uint16_t>(produced.owner - first) >= count) {
      continue;
    }
    if (producers_[index].state.compare_exchange_strong(
            word, ProducerWord{0, ProducerKind::tombstone, produced.lap}.encode(), std::memory_order_seq_cst,
            std::memory_order_relaxed)) {
      ++tombstoned;
    }
  }
  if (tombstoned > 0) wake();
  return tombstoned;
}

bool Channel::finish_claim(std::uint64_t position, std::uint16_t lane, MessageHandle handle) {
  ProducerSlot& slot = producer_at(position);
  std::uint64_t claimed = ProducerWord{lane, ProducerKind::writing, lap_of(position)}.encode();
  if (slot.state.load(std::memory_order_acquire) != claimed) return false;
  slot.handle.store(handle.word(), std::memory_order_relaxed);
  if (!slot.state.compare_exchange_strong(claimed, ProducerWord{0, ProducerKind::full, lap_of(position)}.encode(),
                                          std::memory_order_seq_cst, std::memory_order_relaxed)) {
    return false;
  }
  wake();
  return true;
}

Channel::Census Channel::census() const {
  Census census;
  for (std::uint32_t index = 0; index <= mask_; ++index) {
    const ProducerWord produced = ProducerWord::decode(producers_[index].state.load(std::memory_order_acquire));
    const ConsumerWord consumed = ConsumerWord::decode(consumers_[index].state.load(std::memory_order_acquire));
    if (consumed.kind == ConsumerKind::reading) {
      ++census.reading;
      continue;
    }
    if (consumed.kind != ConsumerKind::idle) {
      ++census.corrupt;
      continue;
    }
    switch (produced.kind) {
      case ProducerKind::free: ++census.free; break;
      case ProducerKind::writing: ++census.writing; break;
      case ProducerKind::full: ++(consumed.lap == produced.lap ? census.full : census.free); break;
      case ProducerKind::tombstone: ++(consumed.lap == produced.lap ? census.tombstone : census.free); break;
      default: ++census.corrupt; break;
    }
  }
  return census;
}

}  // namespace exobus::shm
