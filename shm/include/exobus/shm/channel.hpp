#pragma once
// A channel: a bounded MPMC queue of message handles from the instances of one service
// type (the producers) to the instances of another (the consumers), split in two halves so
// that each side writes only its own memory. The producer half lies in the link's sender
// half, read-only to consumers; the consumer half lies in the link's receiver half,
// read-only to producers (link.hpp). Producers compete among themselves, consumers among
// themselves; neither ever writes the other's words.
//
// Each position p of the queue is served by slot p mod C at lap p / C. A slot's producer
// word says what was written there at which lap, its consumer word how many laps of it
// were consumed:
//
//    producer word           consumer word
//    FREE(0)                 IDLE(0)            initial: a new memory object is zeros
//    WRITING(L, lane)        IDLE(L)            a producer claimed lap L
//    FULL(L) + handle        IDLE(L)            published: consumers may take it
//    FULL(L)                 READING(L, lane)   a consumer claimed it
//    FULL(L)                 IDLE(L + 1)        consumed: free for lap L + 1
//    TOMBSTONE(L)            IDLE(L)            a claim abandoned (an aborted or dead send);
//                                               consumers skip it, to IDLE(L + 1)
//
// The producer may claim lap L + 1 only when the consumer word says IDLE(L + 1), so the
// handle a consumer read under READING(L) cannot change under it. Ownership of every
// half-done step is recorded atomically in the slot's own word, with the lane of its
// maker, so the daemon's recovery of a dead instance finds exactly its slots: a WRITING
// slot becomes a TOMBSTONE (or FULL, for a send that had committed); a READING slot is
// handed to its lease or to the consumer type's retry ring, then made IDLE(L + 1).
//
//  ChannelTail (128 bytes, producer half)        ChannelHead (128 bytes, consumer half)
//  0          8                      64          0          8                      64
//  +----------+----------------------+           +----------+----------------------+
//  |  tail    |                      |           |  head    |                      |
//  +----------+----------------------+           +----------+----------------------+
//  | signal   |                      |           | sleepers |                      |
//  +----------+----------------------+           +----------+----------------------+
//  tail, head: hints anyone of that side may move forward past a claimed slot
//  ("helping"), so a process that dies between claiming and moving blocks nobody.
//  signal: producers bump it and FUTEX_WAKE when sleepers count one; consumers wait on it
//  (a futex word in memory they map read-only: FUTEX_WAIT only reads it).
//  sleepers: consumers asleep (low 32 bits) and sleeps ever begun (high 32 bits): one
//  fetch_add counts a sleeper in and starts a new sleep, so a producer that already woke
//  the sleeps begun so far skips the system call until another one begins.
//
//  ProducerSlot (16 bytes)          ConsumerSlot (8 bytes)
//  +---------------+----------+     +---------------+
//  |  state        |  handle  |     |  state        |
//  +---------------+----------+     +---------------+
//  state words: owner lane (16 bits), kind (4 bits), lap (32 bits, at bit 32).
//
// Invariants
// - tail and head only grow, and only past slots already claimed at their lap.
// - A slot word is only written by CAS from a state its writer observed, except the
//   release stores of the claim owner (WRITING -> FULL, READING -> IDLE(L + 1)).
// - Laps are compared modulo 2^32 (signed difference), so a channel can run forever.
//
// A hostile writer of one half (any instance of that side's type) can only make this
// channel look full, empty or corrupt: every word read from the other half is checked
// against what this side's own half allows, a corrupt state is reported, never waited on
// in a loop, and the daemon repairs the channel (channel_repair.hpp). The damage stays within the
// one link, whose two types are the writers.
//
// Non-guarantees: FIFO only per producer lane; no order across producers.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "exobus/shm/fault_point.hpp"
#include "exobus/shm/futex.hpp"
#include "exobus/shm/message_handle.hpp"
#include "exobus/shm/packed_word.hpp"

namespace exobus::shm {

enum class ProducerKind : std::uint8_t { free = 0, writing = 1, full = 2, tombstone = 3 };
enum class ConsumerKind : std::uint8_t { idle = 0, reading = 1 };

template <class Kind>
struct ChannelWord {
  using Owner = BitField<0, 16>;
  using KindBits = BitField<16, 4>;
  using Lap = BitField<32, 32>;
  static_assert(fields_in_order<Owner, KindBits, Lap>());

  std::uint16_t owner;
  Kind kind;
  std::uint32_t lap;  // consumer word: laps consumed (IDLE) or the lap being read (READING)

  static constexpr ChannelWord decode(std::uint64_t word) {
    return {static_cast<std::uint16_t>(Owner::get(word)), static_cast<Kind>(KindBits::get(word)),
            static_cast<std::uint32_t>(Lap::get(word))};
  }
  constexpr std::uint64_t encode() const {
    return Owner::put(owner) | KindBits::put(static_cast<std::uint8_t>(kind)) | Lap::put(lap);
  }
  friend constexpr bool operator==(const ChannelWord&, const ChannelWord&) = default;
};
using ProducerWord = ChannelWord<ProducerKind>;
using ConsumerWord = ChannelWord<ConsumerKind>;

struct alignas(64) ChannelTail {
  alignas(64) std::atomic<std::uint64_t> tail;
  alignas(64) std::atomic<std::uint32_t> signal;
};
static_assert(sizeof(ChannelTail) == 128 && std::is_standard_layout_v<ChannelTail>);
static_assert(offsetof(ChannelTail, tail) == 0 && offsetof(ChannelTail, signal) == 64);

struct alignas(64) ChannelHead {
  alignas(64) std::atomic<std::uint64_t> head;
  alignas(64) std::atomic<std::uint64_t> sleepers;
};
using SleeperCount = BitField<0, 32>;
using SleepsBegun = BitField<32, 32>;
static_assert(sizeof(ChannelHead) == 128 && std::is_standard_layout_v<ChannelHead>);
static_assert(offsetof(ChannelHead, head) == 0 && offsetof(ChannelHead, sleepers) == 64);

struct ProducerSlot {
  std::atomic<std::uint64_t> state;
  std::atomic<std::uint64_t> handle;
};
static_assert(sizeof(ProducerSlot) == 16 && offsetof(ProducerSlot, handle) == 8);

struct ConsumerSlot {
  std::atomic<std::uint64_t> state;
};
static_assert(sizeof(ConsumerSlot) == 8);

enum class ClaimStatus : std::uint8_t { ok, full, corrupted };
struct Claim {
  ClaimStatus status;
  std::uint64_t position = 0;
};

enum class TakeStatus : std::uint8_t { ok, empty, corrupted };
struct Taken {
  TakeStatus status;
  MessageHandle handle;
  std::uint64_t position = 0;
};

class Channel {
 public:
  Channel() = default;
  // capacity is a power of two from the validated layout (never from shared memory, which
  // a hostile peer could overwrite). Either half may be null for a process that maps only
  // one side read-only and never touches the other (none does today: both are mapped).
  Channel(ChannelTail* tail, ProducerSlot* producers, ChannelHead* head, ConsumerSlot* consumers,
          std::uint32_t capacity)
      : tail_(tail), producers_(producers), head_(head), consumers_(consumers), mask_(capacity - 1),
        shift_(31 - static_cast<std::uint32_t>(__builtin_clz(capacity))) {}

  // Bytes of each half for `capacity` slots (cache-line multiples).
  static std::uint64_t producer_bytes(std::uint32_t capacity);
  static std::uint64_t consumer_bytes(std::uint32_t capacity);

  bool valid() const { return tail_ != nullptr; }
  std::uint32_t capacity() const { return mask_ + 1; }

  // --- producers ---
  // Claims the next position for `lane` (WRITING); nothing is visible to consumers yet.
  Claim claim(std::uint16_t lane);
  // Publishes `handle` at a position this lane claimed (FULL) and wakes sleepers.
  void publish(std::uint64_t position, MessageHandle handle);
  // Gives up a position this lane claimed: consumers skip it.
  void abandon(std::uint64_t position, std::uint16_t lane);
  // Whether a claim would now find the channel full (the lines a claim reads anyway).
  bool looks_full() const;

  // --- consumers ---
  // Takes the oldest published handle for `lane`. record_lease(handle) runs after the slot
  // is claimed and before it is released: it must record the lease and cannot fail
  // (callers reserve lease space before taking).
  template <class RecordLease>
  Taken take(std::uint16_t lane, RecordLease&& record_lease);
  bool looks_empty() const;
  // Sleeping: count in, read the signal, re-check, wait (possibly on several channels at
  // once: futex_wait_any), count out. begin_sleep returns the signal value to wait on.
  std::uint32_t begin_sleep() const;
  void end_sleep() const;
  std::atomic<std::uint32_t>& signal() const { return tail_->signal; }

  std::uint64_t depth() const;  // approximate: tail - head, bounded by capacity

  // --- the daemon: recovery of the lanes [first, first + count) of a dead instance ---
  // Producer half: turns its WRITING slots into TOMBSTONEs; returns how many.
  std::uint32_t tombstone_writes_of(std::uint16_t first, std::uint16_t count);
  // Producer half: publishes `handle` at `position` if it is still this lane's claim.
  bool finish_claim(std::uint64_t position, std::uint16_t lane, MessageHandle handle);
  // Consumer half: for each READING slot of those lanes, resolve(lane, handle) puts the
  // message somewhere safe (its lease, the retry ring) and returns true; then the slot is
  // released. A slot it cannot resolve yet stays READING for the next pass.
  template <class Resolve>
  std::uint32_t release_reads_of(std::uint16_t first, std::uint16_t count, Resolve&& resolve);

  struct Census {
    std::uint32_t free = 0, writing = 0, full = 0, tombstone = 0, reading = 0, corrupt = 0;
  };
  Census census() const;
  void for_each_queued(auto&& visit) const;  // visit(handle) for every FULL, unconsumed slot

 private:
  friend class ChannelRepair;  // channel_repair.hpp
  static std::int32_t lap_difference(std::uint32_t a, std::uint32_t b) { return static_cast<std::int32_t>(a - b); }
  std::uint32_t lap_of(std::uint64_t position) const { return static_cast<std::uint32_t>(position >> shift_); }
  ProducerSlot& producer_at(std::uint64_t position) const { return producers_[position & mask_]; }
  ConsumerSlot& consumer_at(std::uint64_t position) const { return consumers_[position & mask_]; }
  void wake() const;
  // What this process has seen of the consumer half, so that a claim need not read a
  // consumer word the consumers are writing beside (eight share a cache line): every
  // position in [consumed_seen_until_ - kConsumerSlotsPerLine, consumed_seen_until_)
  // whose producer word still says its lap before is done was seen consumed at that lap.
  // It stays true until a producer claims the position: a consumer word at IDLE(L) moves
  // only once lap L is published, and a claim of lap L is a CAS on the producer word that
  // only one producer wins. Positions behind the tail are claimed already, so their
  // producer words never pass the check. A hostile consumer that lies in its words harms
  // only what is sent to it, as it could without this; a corrupt claim forgets it all.
  static constexpr std::uint64_t kConsumerSlotsPerLine = 64 / sizeof(ConsumerSlot);
  bool seen_consumed(std::uint64_t position) const;
  void see_consumed_from(std::uint64_t position);
  void forget_consumed();

  ChannelTail* tail_ = nullptr;
  ProducerSlot* producers_ = nullptr;
  ChannelHead* head_ = nullptr;
  ConsumerSlot* consumers_ = nullptr;
  std::uint32_t mask_ = 0;
  std::uint32_t shift_ = 0;
  // Process-local (Channel objects are), written by any of its producing threads.
  mutable std::uint64_t consumed_seen_until_ = 0;
  mutable std::uint64_t woken_sleepers_ = 0;  // the sleepers word this process last woke
};

// The steps on the path of every message are defined here, to be inlined there.

inline Claim Channel::claim(std::uint16_t lane) {
  for (;;) {
    const std::uint64_t position = tail_->tail.load(std::memory_order_acquire);
    ProducerSlot& slot = producer_at(position);
    const std::uint32_t lap = lap_of(position);
    std::uint64_t word = slot.state.load(std::memory_order_acquire);
    const ProducerWord produced = ProducerWord::decode(word);
    const std::int32_t ahead = lap_difference(produced.lap, lap);
    const bool done_before = (produced.kind == ProducerKind::full || produced.kind == ProducerKind::tombstone) &&
                             ahead == -1;
    // Case analysis of the slot at the tail:
    // - free for our lap (never used, or consumed at the lap before): claim it.
    // - claimed at our lap, or at a later one: another producer has it and has not moved
    //   the tail yet (or died), or the tail is stale; help the tail past and retry.
    // - written at the lap before and not consumed yet (or still being written): full.
    // - anything else: a word of either half was overwritten; report corruption.
    const bool producer_free = (produced.kind == ProducerKind::free && ahead == 0) || done_before;
    // The consumer word is read only when no earlier read of its line already saw it free.
    bool free_now = producer_free && seen_consumed(position);
    ConsumerWord consumed{};
    if (!free_now) {
      consumed = ConsumerWord::decode(consumer_at(position).state.load(std::memory_order_acquire));
      free_now = producer_free && consumed == ConsumerWord{0, ConsumerKind::idle, lap};
      if (free_now) see_consumed_from(position);
    }
    if (free_now) {
      const ProducerWord claimed{lane, ProducerKind::writing, lap};
      if (!slot.state.compare_exchange_strong(word, claimed.encode(), std::memory_order_acquire,
                                              std::memory_order_relaxed)) {
        continue;
      }
      // Death here: WRITING(lane); recovery tombstones it, consumers skip it.
      fault_point(FaultPoint::push_claimed);
      std::uint64_t expected = position;
      tail_->tail.compare_exchange_strong(expected, position + 1, std::memory_order_release,
                                          std::memory_order_relaxed);
      return {ClaimStatus::ok, position};
    }
    if (ahead >= 0 && produced.kind != ProducerKind::free && produced.kind <= ProducerKind::tombstone) {
      std::uint64_t expected = position;
      // Two laps ahead of a tail we then moved ourselves needs a claim made at a tail that
      // was there, and the tail only grows: only an overwritten word gets here. Refuse
      // rather than walk the tail forward up to 2^31 laps.
      if (tail_->tail.compare_exchange_strong(expected, position + 1, std::memory_order_release,
                                              std::memory_order_relaxed) &&
          ahead >= 2) {
        forget_consumed();
        return {ClaimStatus::corrupted, position};
      }
      continue;
    }
    const bool unconsumed = (consumed.kind == ConsumerKind::idle || consumed.kind == ConsumerKind::reading) &&
                            consumed.lap == lap - 1;
    if ((done_before && unconsumed) || (produced.kind == ProducerKind::writing && ahead == -1)) {
      return {ClaimStatus::full, position};
    }
    // The three loads are no snapshot: between them the slot may have gone round (a
    // producer word older than the consumer word read after it). Unchanged tail and
    // producer word, which only our side writes, mean the words judged held at once: only
    // then is this corruption. No word of the other side is re-read, so it cannot keep us here.
    if (tail_->tail.load(std::memory_order_acquire) != position ||
        slot.state.load(std::memory_order_acquire) != word) {
      continue;
    }
    forget_consumed();
    return {ClaimStatus::corrupted, position};
  }
}

inline bool Channel::seen_consumed(std::uint64_t position) const {
  const std::uint64_t until = std::atomic_ref(consumed_seen_until_).load(std::memory_order_acquire);
  return position < until && until - position <= kConsumerSlotsPerLine;
}

inline void Channel::see_consumed_from(std::uint64_t position) {
  // The rest of the line just read: each slot whose word says its previous lap is consumed.
  std::uint64_t until = position + 1;
  while ((until & mask_) != 0 && (until & (kConsumerSlotsPerLine - 1)) != 0 &&
         consumer_at(until).state.load(std::memory_order_acquire) ==
             ConsumerWord{0, ConsumerKind::idle, lap_of(until)}.encode()) {
    ++until;
  }
  // Release: whichever thread of this process claims on the strength of it also sees what
  // the consumers did before their release of those words (they are done with the slots).
  std::atomic_ref(consumed_seen_until_).store(until, std::memory_order_release);
}

inline void Channel::forget_consumed() { std::atomic_ref(consumed_seen_until_).store(0, std::memory_order_relaxed); }

inline void Channel::publish(std::uint64_t position, MessageHandle handle) {
  ProducerSlot& slot = producer_at(position);
  slot.handle.store(handle.word(), std::memory_order_relaxed);
  // Release pairs with the consumer's acquire of FULL: the handle (and, through the chunk's
  // own release, the payload) is visible before the slot is. seq_cst besides: this store
  // and wake()'s load of sleepers are one side of the Dekker pair with a sleeper.
  slot.state.store(ProducerWord{0, ProducerKind::full, lap_of(position)}.encode(), std::memory_order_seq_cst);
  wake();
}

inline void Channel::wake() const {
  // Dekker pairing with begin_sleep(): we stored FULL (seq_cst), then read sleepers; a
  // sleeper increments sleepers, then re-checks the slot, both seq_cst. In the single total
  // order of seq_cst operations at least one of us sees the other.
  const std::uint64_t sleepers = head_->sleepers.load(std::memory_order_seq_cst);
  if (SleeperCount::get(sleepers) == 0) return;  // the busy path
  // Every consumer counted in now began its sleep with the fetch_add that made this value;
  // if this process woke them at that value already, they are awake or waking, and a sleep
  // begun later would show a new value. Two threads may both wake: harmless.
  std::atomic_ref woken(woken_sleepers_);
  if (woken.load(std::memory_order_relaxed) == sleepers) return;
  woken.store(sleepers, std::memory_order_relaxed);
  tail_->signal.fetch_add(1, std::memory_order_release);
  futex_wake_all(tail_->signal);
}

template <class RecordLease>
Taken Channel::take(std::uint16_t lane, RecordLease&& record_lease) {
  for (;;) {
    const std::uint64_t position = head_->head.load(std::memory_order_acquire);
    ConsumerSlot& slot = consumer_at(position);
    const std::uint32_t lap = lap_of(position);
    std::uint64_t word = slot.state.load(std::memory_order_acquire);
    const ConsumerWord consumed = ConsumerWord::decode(word);
    // Case analysis of the slot at the head:
    // - IDLE(our lap): look at the producer word.
    //   - FULL(our lap): claim it (READING), lease it, release it (IDLE(lap + 1)).
    //   - TOMBSTONE(our lap): skip it (IDLE(lap + 1)), help head.
    //   - FREE or WRITING at our lap, or written at the lap before: not published: empty.
    // - READING(our lap) or IDLE(lap + 1): another consumer has it; help head.
    // - READING(lap - 1): a slow consumer still finishes the lap before, and our position
    //   cannot have been produced yet: empty.
    // - IDLE further ahead: the head is stale; help it (twice ahead: corruption).
    // - anything else: corruption.
    if (consumed.kind == ConsumerKind::idle && consumed.lap == lap) {
      ProducerSlot& produced_slot = producer_at(position);
      const ProducerWord produced = ProducerWord::decode(produced_slot.state.load(std::memory_order_acquire));
      const std::int32_t ahead = lap_difference(produced.lap, lap);
      if (produced.kind == ProducerKind::full && ahead == 0) {
        // Stable: no producer claims the next lap before we store IDLE(lap + 1).
        const MessageHandle handle = MessageHandle::from_word(produced_slot.handle.load(std::memory_order_relaxed));
        if (!slot.state.compare_exchange_strong(word, ConsumerWord{lane, ConsumerKind::reading, lap}.encode(),
                                                std::memory_order_acquire, std::memory_order_relaxed)) {
          continue;
        }
        // Death here: READING(lane) without a lease; recovery hands the message on.
        fault_point(FaultPoint::take_claimed);
        record_lease(handle);
        // Death here: READING(lane) with a lease; recovery releases the slot.
        fault_point(FaultPoint::take_leased);
        slot.state.store(ConsumerWord{0, ConsumerKind::idle, lap + 1}.encode(), std::memory_order_release);
        std::uint64_t expected = position;
        head_->head.compare_exchange_strong(expected, position + 1, std::memory_order_release,
                                            std::memory_order_relaxed);
        return {TakeStatus::ok, handle, position};
      }
      if (produced.kind == ProducerKind::tombstone && ahead == 0) {
        slot.state.compare_exchange_strong(word, ConsumerWord{0, ConsumerKind::idle, lap + 1}.encode(),
                                           std::memory_order_release, std::memory_order_relaxed);
        std::uint64_t expected = position;
        head_->head.compare_exchange_strong(expected, position + 1, std::memory_order_release,
                                            std::memory_order_relaxed);
        continue;
      }
      const bool unpublished =
          ((produced.kind == ProducerKind::free || produced.kind == ProducerKind::writing) && ahead == 0) ||
          ((produced.kind == ProducerKind::full || produced.kind == ProducerKind::tombstone) && ahead == -1);
      if (unpublished) return {TakeStatus::empty, {}, position};
      // As in claim(): a producer word newer than the consumer word read before it means
      // the slot went round meanwhile; only an unchanged head and consumer word (our
      // side's) make this corruption.
      if (head_->head.load(std::memory_order_acquire) != position ||
          slot.state.load(std::memory_order_acquire) != word) {
        continue;
      }
      return {TakeStatus::corrupted, {}, position};
    }
    const std::int32_t ahead = lap_difference(consumed.lap, lap);
    if ((consumed.kind == ConsumerKind::reading && ahead == 0) || (consumed.kind == ConsumerKind::idle && ahead >= 1)) {
      std::uint64_t expected = position;
      // As in claim(): two laps ahead of a head we moved ourselves cannot happen.
      if (head_->head.compare_exchange_strong(expected, position + 1, std::memory_order_release,
                                              std::memory_order_relaxed) &&
          consumed.kind == ConsumerKind::idle && ahead >= 2) {
        return {TakeStatus::corrupted, {}, position};
      }
      continue;
    }
    if (consumed.kind == ConsumerKind::reading && ahead == -1) return {TakeStatus::empty, {}, position};
    // A head read a lap or more late meets a slot read at a later lap (READING(lap + 1)).
    if (head_->head.load(std::memory_order_acquire) != position ||
        slot.state.load(std::memory_order_acquire) != word) {
      continue;
    }
    return {TakeStatus::corrupted, {}, position};
  }
}

template <class Resolve>
std::uint32_t Channel::release_reads_of(std::uint16_t first, std::uint16_t count, Resolve&& resolve) {
  std::uint32_t released = 0;
  for (std::uint32_t index = 0; index <= mask_; ++index) {
    ConsumerSlot& slot = consumers_[index];
    std::uint64_t word = slot.state.load(std::memory_order_acquire);
    const ConsumerWord consumed = ConsumerWord::decode(word);
    if (consumed.kind != ConsumerKind::reading || static_cast<std::uint16_t>(consumed.owner - first) >= count) {
      continue;
    }
    // The producer cannot have reused the slot: it waits for IDLE(lap + 1).
    const MessageHandle handle =
        MessageHandle::from_word(producers_[index].handle.load(std::memory_order_acquire));
    if (!resolve(consumed.owner, handle)) continue;
    // Death of the recoverer here: the slot is still READING(lane) and is resolved again on
    // the next recovery; a second copy is flagged redelivered, never lost.
    fault_point(FaultPoint::recovery_step);
    if (slot.state.compare_exchange_strong(word, ConsumerWord{0, ConsumerKind::idle, consumed.lap + 1}.encode(),
                                           std::memory_order_release, std::memory_order_relaxed)) {
      ++released;
    }
  }
  return released;
}

void Channel::for_each_queued(auto&& visit) const {
  for (std::uint32_t index = 0; index <= mask_; ++index) {
    const ProducerWord produced = ProducerWord::decode(producers_[index].state.load(std::memory_order_acquire));
    const ConsumerWord consumed = ConsumerWord::decode(consumers_[index].state.load(std::memory_order_acquire));
    if (produced.kind == ProducerKind::full && consumed.kind == ConsumerKind::idle && consumed.lap == produced.lap) {
      visit(MessageHandle::from_word(producers_[index].handle.load(std::memory_order_relaxed)));
    }
  }
}

}  // namespace exobus::shm
