#pragma once
// The ready ring: a bounded MPMC queue of message handles in shared memory, used where one
// service type is both producer and consumer: its retry ring and its dead-letter queue, in
// its tenant memory (tenant.hpp). Between types, channels do the same (channel.hpp).
//
// It is Vyukov's bounded queue with one change that makes it crash-safe: a producer or
// consumer claims a slot by CAS-ing the slot's own state word to WRITING or READING with
// its lane id inside, before anything else. Ownership of every half-done operation is
// therefore recorded atomically in the slot itself, and recovery of a dead lane finds
// exactly its slots: a WRITING slot becomes a TOMBSTONE that consumers skip; a READING
// slot is handed to its lease or pushed again. head and tail are only hints that anyone
// may advance past a claimed slot ("helping"), so a process that dies between claiming a
// slot and moving head/tail blocks nobody.
//
//  RingHeader (192 bytes: producers, consumers and sleepers each own a cache line)
//  0               8                                                      64
//  +---------------+------------------------------------------------------+
//  |  tail         |  producers CAS it forward past claimed slots          |
//  +---------------+------------------------------------------------------+
//  |  head         |  consumers CAS it forward past consumed slots         |
//  +-------+-------+------------------------------------------------------+
//  |sleepers|signal|  consumers count themselves in before futex-waiting on
//  +-------+-------+  signal; producers bump signal and wake only if sleepers > 0
//
//  RingSlot (16 bytes, four to a cache line)
//  0               8               16
//  +---------------+---------------+
//  |  state        |  handle       |  handle: written by the WRITING owner before it
//  +---------------+---------------+  publishes FULL (release); read after acquiring FULL.
//
//  SlotState (8 bytes)
//  0               16       24    28     32                              64
//  +---------------+--------+-----+------+-------------------------------+
//  |  owner lane   |deliver.| kind| 0    |  lap (position / capacity)    |
//  +---------------+--------+-----+------+-------------------------------+
//  A slot at index i serves positions i, i+C, i+2C, ... ; lap tells which. Per position:
//    EMPTY(lap) -> WRITING(lap, producer) -> FULL(lap, deliveries) -> READING(lap, consumer)
//    -> EMPTY(lap + 1); recovery turns WRITING(lap, dead) into TOMBSTONE(lap), which a
//    consumer turns into EMPTY(lap + 1).
//
// Invariants
// - tail and head only grow, and only past slots whose state at that lap is no longer
//   EMPTY (tail) or is already EMPTY(lap + 1) or READING/TOMBSTONE (head).
// - A slot's state word is only written by CAS from a state its writer observed, except
//   the release stores of the claim owner (WRITING -> FULL, READING -> EMPTY(lap + 1)).
// - Laps are compared modulo 2^32 (signed difference), so a ring can run forever.
//
// Crash analysis (who repairs what a dead process leaves behind) is written at each step.
// Non-guarantees: FIFO only per producer lane; no order across producers; a consumer that
// stops leaving WRITING unfinished (a hung, not dead, producer) stalls consumers of that
// ring until the producer runs again or is declared dead.
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "exobus/shm/futex.hpp"
#include "exobus/shm/fault_point.hpp"
#include "exobus/shm/message_handle.hpp"
#include "exobus/shm/packed_word.hpp"

namespace exobus::shm {

enum class SlotKind : std::uint8_t { empty = 0, writing = 1, full = 2, reading = 3, tombstone = 4 };

struct SlotState {
  using Owner = BitField<0, 16>;
  using Deliveries = BitField<16, 8>;
  using Kind = BitField<24, 4>;
  using Lap = BitField<32, 32>;
  static_assert(fields_in_order<Owner, Deliveries, Kind, Lap>());

  std::uint16_t owner;
  std::uint8_t deliveries;
  SlotKind kind;
  std::uint32_t lap;

  static constexpr SlotState decode(std::uint64_t word) {
    return {static_cast<std::uint16_t>(Owner::get(word)), static_cast<std::uint8_t>(Deliveries::get(word)),
            static_cast<SlotKind>(Kind::get(word)), static_cast<std::uint32_t>(Lap::get(word))};
  }
  constexpr std::uint64_t encode() const {
    return Owner::put(owner) | Deliveries::put(deliveries) | Kind::put(static_cast<std::uint8_t>(kind)) | Lap::put(lap);
  }
};

struct alignas(64) RingHeader {
  alignas(64) std::atomic<std::uint64_t> tail;
  alignas(64) std::atomic<std::uint64_t> head;
  alignas(64) std::atomic<std::uint32_t> sleepers;
  std::atomic<std::uint32_t> signal;
};
static_assert(sizeof(RingHeader) == 192 && alignof(RingHeader) == 64 && std::is_standard_layout_v<RingHeader>);
static_assert(offsetof(RingHeader, tail) == 0 && offsetof(RingHeader, head) == 64 &&
              offsetof(RingHeader, sleepers) == 128 && offsetof(RingHeader, signal) == 132);

struct RingSlot {
  std::atomic<std::uint64_t> state;
  std::atomic<std::uint64_t> handle;
};
static_assert(sizeof(RingSlot) == 16 && alignof(RingSlot) == 8 && std::is_standard_layout_v<RingSlot>);
static_assert(offsetof(RingSlot, state) == 0 && offsetof(RingSlot, handle) == 8);

enum class PushStatus : std::uint8_t { ok, full, corrupted };
enum class RingTakeStatus : std::uint8_t { ok, empty, corrupted };

struct RingTaken {
  RingTakeStatus status;
  MessageHandle handle;
  std::uint8_t deliveries;  // earlier deliveries of this message to this ring's type
  std::uint64_t position;
};

class ReadyRing {
 public:
  ReadyRing() = default;
  // capacity is a power of two, taken from the validated segment layout (never from the
  // ring's own memory, which a hostile peer could overwrite).
  ReadyRing(RingHeader* header, RingSlot* slots, std::uint32_t capacity)
      : header_(header), slots_(slots), mask_(capacity - 1), shift_(log2(capacity)) {}

  static void initialise(RingHeader* header, RingSlot* slots, std::uint32_t capacity);

  // Push `handle` for `lane`. on_claim(position) runs once the slot is claimed, before the
  // handle is published, so the caller can record where its message went.
  template <class OnClaim>
  PushStatus push(MessageHandle handle, std::uint8_t deliveries, std::uint16_t lane, OnClaim&& on_claim);

  // Take the oldest published handle for `lane`. record_lease(handle, deliveries) runs
  // after the slot is claimed and before it is released: it must record the lease and
  // cannot fail (callers check lease space before taking).
  template <class RecordLease>
  RingTaken take(std::uint16_t lane, RecordLease&& record_lease);

  // Sleep until a message may be there, at most `timeout`. Spinning is the caller's job.
  void wait(std::chrono::nanoseconds timeout);
  // The steps of wait(), for a sleep on several queues at once (futex_wait_any): count in
  // and read the signal, re-check, wait, count out.
  std::uint32_t begin_sleep() const;
  void end_sleep() const;
  std::atomic<std::uint32_t>& signal() const { return header_->signal; }
  // Wakes every consumer sleeping in wait() (a push does it; so does a consumer stopping).
  void wake();
  bool looks_empty() const;
  // Whether a push would now find the ring full. It reads the tail and the slot there, the
  // lines a push reads anyway, not the consumers' head.
  bool looks_full() const;
  std::uint64_t depth() const;  // approximate: tail - head

  // --- recovery (run by the daemon for a lane whose process is dead) ---
  // Recovery works on the lanes [first_lane, first_lane + lane_count) of one instance.
  // Turn every WRITING slot of those lanes into a TOMBSTONE; returns how many.
  std::uint32_t tombstone_writes_of(std::uint16_t first_lane, std::uint16_t lane_count);
  // Whether `position` was claimed by `lane` and never published.
  bool is_unpublished_claim(std::uint64_t position, std::uint16_t lane) const;
  // For each READING slot of those lanes: resolve(lane, handle, deliveries) puts the message
  // somewhere safe (its lease, or a new push) and returns true; then the slot is released.
  // A slot it cannot resolve yet stays READING for the next recovery pass.
  template <class Resolve>
  std::uint32_t release_reads_of(std::uint16_t first_lane, std::uint16_t lane_count, Resolve&& resolve);
  // Count slots per kind (tests and status).
  struct Census {
    std::uint32_t empty = 0, writing = 0, full = 0, reading = 0, tombstone = 0, corrupt = 0;
  };
  Census census() const;
  void for_each_full(auto&& visit) const;  // visit(handle) for every FULL slot

  std::uint32_t capacity() const { return mask_ + 1; }

 private:
  static std::uint32_t log2(std::uint32_t value) { return 31 - __builtin_clz(value); }
  static std::int32_t lap_difference(std::uint32_t a, std::uint32_t b) { return static_cast<std::int32_t>(a - b); }
  std::uint32_t lap_of(std::uint64_t position) const { return static_cast<std::uint32_t>(position >> shift_); }
  RingSlot& slot_at(std::uint64_t position) const { return slots_[position & mask_]; }

  RingHeader* header_ = nullptr;
  RingSlot* slots_ = nullptr;
  std::uint32_t mask_ = 0;
  std::uint32_t shift_ = 0;
};

template <class OnClaim>
PushStatus ReadyRing::push(MessageHandle handle, std::uint8_t deliveries, std::uint16_t lane, OnClaim&& on_claim) {
  for (;;) {
    const std::uint64_t position = header_->tail.load(std::memory_order_acquire);
    RingSlot& slot = slot_at(position);
    const std::uint32_t lap = lap_of(position);
    std::uint64_t word = slot.state.load(std::memory_order_acquire);
    const SlotState state = SlotState::decode(word);
    const std::int32_t ahead = lap_difference(state.lap, lap);
    // Case analysis of the slot at the tail:
    // - EMPTY at our lap: free for this position; claim it.
    // - claimed at our lap (WRITING/FULL/READING/TOMBSTONE): another producer claimed it
    //   and has not moved the tail yet (or died); help the tail past and retry.
    // - a later lap: position was claimed and consumed already, the tail is stale (its
    //   claimer died before moving it, or we read it late); help it past and retry.
    // - the previous lap, not yet consumed: the ring is full.
    // - anything else: the slot or the tail was overwritten; report corruption.
    if (ahead == 0 && state.kind == SlotKind::empty) {
      const SlotState claim{lane, 0, SlotKind::writing, lap};
      if (!slot.state.compare_exchange_strong(word, claim.encode(), std::memory_order_acquire,
                                              std::memory_order_relaxed)) {
        continue;
      }
      // Death here: the slot is WRITING(lane); recovery tombstones it, consumers skip it.
      fault_point(FaultPoint::push_claimed);
      std::uint64_t expected = position;
      header_->tail.compare_exchange_strong(expected, position + 1, std::memory_order_release,
                                            std::memory_order_relaxed);
      on_claim(position);
      fault_point(FaultPoint::push_recorded);
      slot.handle.store(handle.word(), std::memory_order_relaxed);
      // Release pairs with the consumer's acquire of FULL: the handle (and, through the
      // chunk's own release, the payload) is visible before the slot is. seq_cst besides:
      // this store and wake()'s load of sleepers are one side of the Dekker pair
      // with wait() (a plain x86 store would let the load pass it).
      slot.state.store(SlotState{0, deliveries, SlotKind::full, lap}.encode(), std::memory_order_seq_cst);
      wake();
      return PushStatus::ok;
    }
    if (ahead >= 0 && state.kind <= SlotKind::tombstone) {
      std::uint64_t expected = position;
      // A slot two or more laps ahead of a tail we then moved ourselves cannot happen: it
      // needs a claim at position + capacity, made by a producer that read tail there, and
      // the tail only grows. Only an overwritten tail or slot gets here; helping it forward
      // one position at a time would take up to 2^31 laps, so refuse instead.
      if (header_->tail.compare_exchange_strong(expected, position + 1, std::memory_order_release,
                                                std::memory_order_relaxed) &&
          ahead >= 2) {
        return PushStatus::corrupted;
      }
      continue;
    }
    if (ahead == -1 && state.kind != SlotKind::empty && state.kind <= SlotKind::tombstone) {
      return PushStatus::full;
    }
    return PushStatus::corrupted;
  }
}

template <class RecordLease>
RingTaken ReadyRing::take(std::uint16_t lane, RecordLease&& record_lease) {
  for (;;) {
    const std::uint64_t position = header_->head.load(std::memory_order_acquire);
    RingSlot& slot = slot_at(position);
    const std::uint32_t lap = lap_of(position);
    std::uint64_t word = slot.state.load(std::memory_order_acquire);
    const SlotState state = SlotState::decode(word);
    const std::int32_t ahead = lap_difference(state.lap, lap);
    // Case analysis of the slot at the head:
    // - FULL at our lap: claim it, lease it, release it.
    // - EMPTY or WRITING at our lap: nothing published here yet; the ring is empty for us.
    // - READING at the previous lap: a slow consumer still finishes the message a lap ago
    //   while the others went round the ring; our position is not even produced: empty.
    // - READING at our lap, or EMPTY at the next lap: another consumer has it; help head.
    // - TOMBSTONE at our lap: a dead producer's claim; release the slot, help head.
    // - a later lap otherwise: position was consumed already and the head is stale; help.
    // - anything else: corruption.
    if (ahead == 0 && state.kind == SlotKind::full) {
      const std::uint64_t handle_word = slot.handle.load(std::memory_order_relaxed);
      const SlotState claim{lane, state.deliveries, SlotKind::reading, lap};
      if (!slot.state.compare_exchange_strong(word, claim.encode(), std::memory_order_acquire,
                                              std::memory_order_relaxed)) {
        continue;
      }
      // Death here: READING(lane) without a lease; recovery pushes the message again.
      fault_point(FaultPoint::take_claimed);
      const MessageHandle handle = MessageHandle::from_word(handle_word);
      record_lease(handle, state.deliveries);
      // Death here: READING(lane) with a lease; recovery releases the slot, requeues the lease.
      fault_point(FaultPoint::take_leased);
      slot.state.store(SlotState{0, 0, SlotKind::empty, lap + 1}.encode(), std::memory_order_release);
      std::uint64_t expected = position;
      header_->head.compare_exchange_strong(expected, position + 1, std::memory_order_release,
                                            std::memory_order_relaxed);
      return {RingTakeStatus::ok, handle, state.deliveries, position};
    }
    if ((ahead == 0 && (state.kind == SlotKind::empty || state.kind == SlotKind::writing)) ||
        (ahead == -1 && state.kind == SlotKind::reading)) {
      return {RingTakeStatus::empty, {}, 0, position};
    }
    if (ahead == 0 && state.kind == SlotKind::tombstone) {
      slot.state.compare_exchange_strong(word, SlotState{0, 0, SlotKind::empty, lap + 1}.encode(),
                                         std::memory_order_release, std::memory_order_relaxed);
    }
    if ((ahead == 0 && (state.kind == SlotKind::reading || state.kind == SlotKind::tombstone)) ||
        (ahead > 0 && state.kind <= SlotKind::tombstone)) {
      std::uint64_t expected = position;
      // As in push(): two laps ahead of a head we moved ourselves needs a consumer that read
      // head at position + capacity, impossible as the head only grows. Refuse an
      // overwritten head or slot rather than walk it forward up to 2^31 laps.
      if (header_->head.compare_exchange_strong(expected, position + 1, std::memory_order_release,
                                                std::memory_order_relaxed) &&
          ahead >= 2) {
        return {RingTakeStatus::corrupted, {}, 0, position};
      }
      continue;
    }
    return {RingTakeStatus::corrupted, {}, 0, position};
  }
}

template <class Resolve>
std::uint32_t ReadyRing::release_reads_of(std::uint16_t first_lane, std::uint16_t lane_count, Resolve&& resolve) {
  std::uint32_t released = 0;
  for (std::uint32_t index = 0; index <= mask_; ++index) {
    RingSlot& slot = slots_[index];
    std::uint64_t word = slot.state.load(std::memory_order_acquire);
    const SlotState state = SlotState::decode(word);
    if (state.kind != SlotKind::reading || static_cast<std::uint16_t>(state.owner - first_lane) >= lane_count) {
      continue;
    }
    if (!resolve(state.owner, MessageHandle::from_word(slot.handle.load(std::memory_order_relaxed)),
                 state.deliveries)) {
      continue;
    }
    // Death of the recoverer here: the slot is still READING(lane) and is resolved again
    // on the next recovery; a second copy is flagged redelivered, never lost.
    fault_point(FaultPoint::recovery_step);
    if (slot.state.compare_exchange_strong(word, SlotState{0, 0, SlotKind::empty, state.lap + 1}.encode(),
                                           std::memory_order_release, std::memory_order_relaxed)) {
      ++released;
    }
  }
  return released;
}

void ReadyRing::for_each_full(auto&& visit) const {
  for (std::uint32_t index = 0; index <= mask_; ++index) {
    const SlotState state = SlotState::decode(slots_[index].state.load(std::memory_order_acquire));
    if (state.kind == SlotKind::full) {
      visit(MessageHandle::from_word(slots_[index].handle.load(std::memory_order_relaxed)));
    }
  }
}

}  // namespace exobus::shm
