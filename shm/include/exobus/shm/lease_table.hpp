#pragma once
// A lane's lease table: one entry per message its thread took and has not settled. A lease
// is what keeps a taken message safe: while it is ACTIVE the message is this lane's to ack;
// when it is reclaimed (release, reject, expiry, the owner's death) a copy goes to the
// type's retry or dead-letter ring before the entry is freed, so the message is in a
// channel, a ring or a lease at every instant.
//
//  LeaseEntry (32 bytes, two to a cache line)
//  0               8               16                                       32
//  +---------------+---------------+----------------------------------------+
//  |  state        |  handle       |  unused                                |
//  +---------------+---------------+----------------------------------------+
//  state:  LeaseState below; the only field ever changed by CAS. Any thread of the
//          instance acks, renews, releases; the daemon expires and recovers.
//  handle: written by the lane's own thread, while the entry is FREE, before it stores
//          ACTIVE (release); read by whoever acquires ACTIVE or RECLAIMING. Its link says
//          where the message lies; the lease's type is the receiver of that link.
//
//  LeaseState (8 bytes)
//  0                               32        40     44                      64
//  +-------------------------------+---------+------+-----------------------+
//  |  deadline (ms, mod 2^32)      |deliver. | kind |  generation (20 bits) |
//  +-------------------------------+---------+------+-----------------------+
//  FREE -> ACTIVE (take) -> FREE (ack, generation + 1)
//  ACTIVE -> RECLAIMING (release, reject, expiry, recovery) -> FREE (generation + 1) once
//  the copy is pushed. A lease token carries the generation, so an ack of a lease that was
//  reclaimed (and maybe reused) fails its CAS and is ignored: a late ack is harmless.
//
// Invariants
// - Only the lane's own thread turns FREE entries ACTIVE, so a FREE entry it found stays
//   FREE until it uses it; the daemon's park() turns FREE into RECLAIMING only for a lane
//   whose thread is dead.
// - Every transition out of ACTIVE is a CAS from the exact word its maker read: of an ack,
//   a renew and a reclaim racing on one lease, exactly one wins each step.
//
// A death at each step: between the writes of handle and ring and the store of ACTIVE,
// the entry is still FREE and the taken slot READING (recovery parks it here); after
// ACTIVE, recovery requeues the lease; between RECLAIMING and the push, the next pass
// pushes; between the push and FREE, the next pass pushes a second copy (flagged
// redelivered, or found stale after an ack).
#include <atomic>
#include <cstdint>
#include <optional>
#include <span>

#include "exobus/shm/message_handle.hpp"
#include "exobus/shm/packed_word.hpp"

namespace exobus::shm {

enum class LeaseKind : std::uint8_t { free = 0, active = 1, reclaiming = 2 };

struct LeaseState {
  using Deadline = BitField<0, 32>;
  using Deliveries = BitField<32, 8>;
  using Kind = BitField<40, 4>;
  using Generation = BitField<44, 20>;
  static_assert(fields_in_order<Deadline, Deliveries, Kind, Generation>());

  std::uint32_t deadline_ms;
  std::uint8_t deliveries;
  LeaseKind kind;
  std::uint32_t generation;

  static constexpr LeaseState decode(std::uint64_t word) {
    return {static_cast<std::uint32_t>(Deadline::get(word)), static_cast<std::uint8_t>(Deliveries::get(word)),
            static_cast<LeaseKind>(Kind::get(word)), static_cast<std::uint32_t>(Generation::get(word))};
  }
  constexpr std::uint64_t encode() const {
    return Deadline::put(deadline_ms) | Deliveries::put(deliveries) | Kind::put(static_cast<std::uint8_t>(kind)) |
           Generation::put(generation);
  }
  // The FREE state that follows this one: its generation moves on, so the tokens of the
  // lease it was fail from now on.
  constexpr std::uint64_t freed() const {
    return LeaseState{0, 0, LeaseKind::free, static_cast<std::uint32_t>((generation + 1) & Generation::kMask)}.encode();
  }
  constexpr bool held() const { return kind == LeaseKind::active || kind == LeaseKind::reclaiming; }
};

struct LeaseEntry {
  std::atomic<std::uint64_t> state;
  std::atomic<std::uint64_t> handle;
  std::uint8_t unused[16];
};
static_assert(sizeof(LeaseEntry) == 32 && alignof(LeaseEntry) == 8 && std::is_standard_layout_v<LeaseEntry>);
static_assert(offsetof(LeaseEntry, state) == 0 && offsetof(LeaseEntry, handle) == 8 &&
              offsetof(LeaseEntry, unused) == 16);

// Identifies one lease for ack/release/reject/renew: lane, entry and its generation.
// As one word, for keeping outside shared memory:
//  0                       24                      48              64
//  +-----------------------+-----------------------+---------------+
//  |  generation           |  entry                |  lane         |
//  +-----------------------+-----------------------+---------------+
struct LeaseToken {
  using Generation = BitField<0, 24>;
  using Entry = BitField<24, 24>;
  using Lane = BitField<48, 16>;
  static_assert(fields_in_order<Generation, Entry, Lane>());

  std::uint16_t lane = 0;
  std::uint32_t entry = 0;
  std::uint32_t generation = 0;

  constexpr std::uint64_t word() const { return Lane::put(lane) | Entry::put(entry) | Generation::put(generation); }
  static constexpr LeaseToken from_word(std::uint64_t word) {
    return {static_cast<std::uint16_t>(Lane::get(word)), static_cast<std::uint32_t>(Entry::get(word)),
            static_cast<std::uint32_t>(Generation::get(word))};
  }
  friend bool operator==(const LeaseToken&, const LeaseToken&) = default;
};

// The operations on one lane's entries. A view: the entries live in the segment.
class LeaseTable {
 public:
  explicit LeaseTable(std::span<LeaseEntry> entries) : entries_(entries) {}

  std::uint32_t size() const { return static_cast<std::uint32_t>(entries_.size()); }
  LeaseEntry& entry(std::uint32_t index) const { return entries_[index]; }
  // The token's entry, or null for an index out of range.
  LeaseEntry* find(const LeaseToken& token) const {
    return token.entry < entries_.size() ? &entries_[token.entry] : nullptr;
  }

  // --- the lane's own thread ---
  struct Reserved {
    std::uint32_t index;
    std::uint32_t generation;  // the FREE entry's: the lease made in it has this generation
  };
  // A FREE entry, scanning from `from` round the table; nothing when every entry is held.
  std::optional<Reserved> reserve(std::uint32_t from) const;
  // Makes the reserved entry the ACTIVE lease of `handle`; returns the state word stored.
  std::uint64_t activate(const Reserved& reserved, MessageHandle handle, std::uint32_t deadline_ms,
                         std::uint8_t deliveries) const;
  // The message taken into the lease was a stale copy: frees the lease unless the daemon is
  // already reclaiming it (then the daemon finds the copy stale and frees it).
  void drop(const Reserved& reserved, std::uint64_t active_word) const;

  // --- any thread ---
  // The handle held by the token's lease (`entry`, from find()) while it is ACTIVE with its
  // generation, read like a seqlock; `word` gets the state word it was read with. Nothing
  // otherwise.
  static std::optional<MessageHandle> active_handle(const LeaseEntry& entry, const LeaseToken& token,
                                                    std::uint64_t& word);
  // Frees the token's ACTIVE lease, from the state `word` it was read with, retrying past
  // renewals; false when a reclaim won meanwhile.
  static bool free_active(LeaseEntry& entry, const LeaseToken& token, std::uint64_t word);
  // Moves the deadline of the token's ACTIVE lease; false when it is not ACTIVE any more.
  bool renew(const LeaseToken& token, std::uint32_t deadline_ms) const;
  // Makes the caller the one mover of an ACTIVE lease (a RECLAIMING one it already is):
  // `word` becomes the RECLAIMING state. False when another step won the lease.
  static bool mark_reclaiming(LeaseEntry& entry, std::uint64_t& word);
  // After the copy is pushed: FREE, the next generation.
  static void free_reclaimed(LeaseEntry& entry, std::uint64_t reclaiming_word);

  // --- the daemon, for a dead lane ---
  // Whether an ACTIVE or RECLAIMING lease holds `handle`.
  bool holds(MessageHandle handle) const;
  // Gives `handle` a RECLAIMING lease due at once, in a FREE entry; false when none is FREE.
  bool park(MessageHandle handle, std::uint8_t deliveries, std::uint32_t now_ms) const;
  // visit(entry, word) for every ACTIVE or RECLAIMING entry.
  template <class Visit>
  void for_each_held(Visit&& visit) const;

 private:
  std::span<LeaseEntry> entries_;
};

// The operations on the path of every message are defined here, to be inlined there.

inline std::optional<LeaseTable::Reserved> LeaseTable::reserve(std::uint32_t from) const {
  const std::uint32_t count = size();
  // Wrapped by comparison, not by `%`: a division per take costs more than the scan.
  std::uint32_t index = from < count ? from : (count == 0 ? 0 : from % count);
  for (std::uint32_t scanned = 0; scanned < count; ++scanned) {
    const LeaseState state = LeaseState::decode(entries_[index].state.load(std::memory_order_acquire));
    if (state.kind == LeaseKind::free) return Reserved{index, state.generation};
    if (++index == count) index = 0;
  }
  return std::nullopt;
}

inline std::uint64_t LeaseTable::activate(const Reserved& reserved, MessageHandle handle, std::uint32_t deadline_ms,
                                          std::uint8_t deliveries) const {
  LeaseEntry& entry = entries_[reserved.index];
  entry.handle.store(handle.word(), std::memory_order_release);  // see active_handle()
  const std::uint64_t active = LeaseState{deadline_ms, deliveries, LeaseKind::active, reserved.generation}.encode();
  // Release: the handle is visible to whoever acquires ACTIVE (recovery, expiry).
  entry.state.store(active, std::memory_order_release);
  return active;
}

inline void LeaseTable::drop(const Reserved& reserved, std::uint64_t active_word) const {
  entries_[reserved.index].state.compare_exchange_strong(active_word, LeaseState::decode(active_word).freed(),
                                                         std::memory_order_release, std::memory_order_relaxed);
}

inline std::optional<MessageHandle> LeaseTable::active_handle(const LeaseEntry& entry, const LeaseToken& token,
                                                              std::uint64_t& word) {
  word = entry.state.load(std::memory_order_acquire);
  LeaseState state = LeaseState::decode(word);
  if (state.kind != LeaseKind::active || state.generation != token.generation) return std::nullopt;
  // Seqlock-style re-check: the handle read belongs to this lease only if the state is
  // still ACTIVE with our generation after reading it. The acquire pairs with the taker's
  // release store of a newer handle, which it made after seeing the entry FREE: reading
  // that newer handle guarantees the re-check sees the generation change.
  const MessageHandle handle = MessageHandle::from_word(entry.handle.load(std::memory_order_acquire));
  word = entry.state.load(std::memory_order_relaxed);
  state = LeaseState::decode(word);
  if (state.kind != LeaseKind::active || state.generation != token.generation) return std::nullopt;
  return handle;
}

inline bool LeaseTable::free_active(LeaseEntry& entry, const LeaseToken& token, std::uint64_t word) {
  const std::uint64_t freed = LeaseState::decode(word).freed();
  while (!entry.state.compare_exchange_weak(word, freed, std::memory_order_release, std::memory_order_relaxed)) {
    const LeaseState state = LeaseState::decode(word);
    // A renew changed the deadline: retry. A reclaim won: the lease is no longer ours to free.
    if (state.kind != LeaseKind::active || state.generation != token.generation) return false;
  }
  return true;
}

inline bool LeaseTable::renew(const LeaseToken& token, std::uint32_t deadline_ms) const {
  LeaseEntry* entry = find(token);
  if (entry == nullptr) return false;
  std::uint64_t word = entry->state.load(std::memory_order_acquire);
  for (;;) {
    LeaseState state = LeaseState::decode(word);
    if (state.kind != LeaseKind::active || state.generation != token.generation) return false;
    state.deadline_ms = deadline_ms;
    if (entry->state.compare_exchange_weak(word, state.encode(), std::memory_order_release,
                                           std::memory_order_relaxed)) {
      return true;
    }
  }
}

template <class Visit>
void LeaseTable::for_each_held(Visit&& visit) const {
  for (LeaseEntry& entry : entries_) {
    const std::uint64_t word = entry.state.load(std::memory_order_acquire);
    if (LeaseState::decode(word).held()) visit(entry, word);
  }
}

}  // namespace exobus::shm
