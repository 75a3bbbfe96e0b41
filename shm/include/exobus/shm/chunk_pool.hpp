#pragma once
// The chunk pool of one link (link.hpp): size-classed message buffers that only the
// sending type writes, read-only to the receiving type, which acknowledges a message by
// storing its generation in an ack word of its own memory. No receiver ever writes the
// sender's memory, and no sender ever writes the receiver's.
//
//  Chunk, in the link's sender half (64-byte header + chunk_size payload bytes; chunk_size
//  is a power of two >= 256, so every chunk starts on a cache line)
//  0               8       12                                             64
//  +---------------+-------+----------------------------------------------+----------...
//  |  state        |length |  unused                                      |  payload
//  +---------------+-------+----------------------------------------------+----------...
//  state:  ChunkState below; changed by CAS, or by the owner of an ALLOCATED chunk.
//  length: payload bytes; written by the allocating owner before it publishes (release),
//          read after an acquire of a PUBLISHED state. Always re-checked <= chunk_size.
//
//  Ack word, in the link's receiver half (4 bytes per chunk, same index)
//  0                          24       32
//  +--------------------------+--------+
//  |  acknowledged generation |   0    |   0: none yet. Only moves forward (CAS).
//  +--------------------------+--------+
//
//  ChunkState (8 bytes)
//  0                               32     36     40                      64
//  +-------------------------------+------+------+-----------------------+
//  |  owner (ALLOCATED)            | kind | 0    |  generation           |
//  +-------------------------------+------+------+-----------------------+
//  FREE:       never used, or given back unsent. generation is the last one used.
//  ALLOCATED:  owner = the sending type's instance (its index in the type). Only that
//              owner writes the payload; if it dies, the daemon frees the chunk.
//  PUBLISHED:  the message of `generation`, until its ack word holds that generation; then
//              it is free again for the sender's next allocation. There is no counter a
//              crash between "counted" and "recorded" could skew: acknowledging twice is
//              harmless, and a late ack of an older generation never overwrites a newer one.
//
// Invariants
// - A chunk is written only by the sender instance recorded in its ALLOCATED state; a dead
//   writer's chunks are found by a scan.
// - generation changes on every allocation (never 0), so a handle from an earlier life of
//   the chunk fails validation instead of reading or acknowledging the new message.
// - A PUBLISHED chunk is reused only once its ack word holds its generation.
//
// What a hostile peer can do: the sender can rewrite a message after sending it, or make
// its pool look full; the receiver can acknowledge what it has not handled. Either harms
// only this link's messages, which are the sender's to the receiver. A receiver copies a
// payload out and validates the copy (the client library), so what a handler sees cannot
// change under it.
//
// Non-guarantees: a reader whose lease was reclaimed (expired while its process was
// stopped, say) may read a chunk while it is being reused: it sees another message of the
// same link, or garbage, but never leaves the chunk (length is bounds-checked). intact(),
// asked after reading, tells whether what was read is still the handle's message.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "exobus/shm/message_handle.hpp"

namespace exobus::shm {

inline constexpr std::size_t kChunkHeaderBytes = 64;
inline constexpr std::uint32_t kMaxSizeClasses = 8;
inline constexpr std::uint32_t kMinChunkSize = 256;
inline constexpr std::uint32_t kMaxChunkSize = 1u << 20;

enum class ChunkKind : std::uint8_t { free = 0, allocated = 1, published = 2 };

struct ChunkState {
  using Owner = BitField<0, 32>;
  using Kind = BitField<32, 4>;
  using Generation = BitField<40, kGenerationBits>;
  static_assert(fields_in_order<Owner, Kind, Generation>());

  std::uint32_t owner;
  ChunkKind kind;
  std::uint32_t generation;

  static constexpr ChunkState decode(std::uint64_t word) {
    return {static_cast<std::uint32_t>(Owner::get(word)), static_cast<ChunkKind>(Kind::get(word)),
            static_cast<std::uint32_t>(Generation::get(word))};
  }
  constexpr std::uint64_t encode() const {
    return Owner::put(owner) | Kind::put(static_cast<std::uint8_t>(kind)) | Generation::put(generation);
  }
};

struct ChunkHeader {
  std::atomic<std::uint64_t> state;
  std::atomic<std::uint32_t> length;
  std::uint8_t unused[kChunkHeaderBytes - 12];
};
static_assert(sizeof(ChunkHeader) == kChunkHeaderBytes && alignof(ChunkHeader) == 8 &&
              std::is_standard_layout_v<ChunkHeader>);
static_assert(offsetof(ChunkHeader, state) == 0 && offsetof(ChunkHeader, length) == 8 &&
              offsetof(ChunkHeader, unused) == 12);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<std::uint32_t>) == 4);

// One size class of a pool: `chunk_count` chunks of `chunk_size` bytes. Where it lies is
// computed by the layout (link.hpp), never read from shared memory.
struct SizeClass {
  std::uint32_t chunk_size;
  std::uint32_t chunk_count;
};

enum class PoolStatus : std::uint8_t { ok, too_large, exhausted };

struct Allocation {
  PoolStatus status;
  MessageHandle handle;
  std::span<std::byte> buffer;  // the whole chunk payload area
};

struct ChunkView {
  bool valid;  // false: stale, acknowledged or corrupt
  std::span<const std::byte> payload;
};

struct PoolAudit {
  std::uint64_t free = 0, allocated = 0, published = 0, total = 0;
};

class ChunkPool {
 public:
  ChunkPool() = default;
  ChunkPool(const ChunkPool&) = delete;
  ChunkPool& operator=(const ChunkPool&) = delete;
  // chunks: the first chunk header of the first class (in the sender half); acks: the
  // pool's ack words (in the receiver half); both from the validated layout.
  ChunkPool(std::byte* chunks, std::atomic<std::uint32_t>* acks, std::span<const SizeClass> classes,
            std::uint32_t link);

  // --- the sending type ---
  // Allocate a chunk for at least `size` bytes, owned by instance `owner` until published.
  // Scanning starts where this process's last allocation in the class ended (a hint, so a
  // lone sender walks the pool in order and most allocations find a free chunk at once).
  Allocation allocate(std::size_t size, std::uint32_t owner);
  // Owner only: record the payload length and publish the message.
  void publish(MessageHandle handle, std::uint32_t length);
  // Owner only: give back an allocated chunk that will not be sent.
  void abandon(MessageHandle handle, std::uint32_t owner);
  // Owner only: the payload area of a chunk it allocated (to copy a message it wrote there).
  std::span<std::byte> owned_buffer(MessageHandle handle) const;

  // --- the receiving type ---
  // The payload of a published message not yet acknowledged.
  ChunkView read(MessageHandle handle) const;
  // Asked after reading a view from read(): whether the chunk still holds the handle's
  // message, so that every byte read was its own. Only a new allocation, which changes the
  // generation, rewrites a chunk; the acquire fence orders the reads before the check and
  // pairs with the release fence in allocate().
  bool intact(MessageHandle handle) const;
  bool still_pending(MessageHandle handle) const;
  // Acknowledges the handle's message; idempotent, and never undoes a newer ack.
  void acknowledge(MessageHandle handle);

  // --- the daemon ---
  // Free every chunk that `owner` allocated and did not publish.
  std::uint32_t reclaim_allocations_of(std::uint32_t owner);
  // Free a chunk of an interrupted send, allocated or published, that no channel slot
  // refers to.
  void unpublish(MessageHandle handle);
  PoolAudit audit() const;
  // The chunks of size class `c` alone (c < class_count()): what `exobus top` and the
  // metrics show per size.
  PoolAudit audit_class(std::uint32_t c) const;
  std::uint32_t class_count() const { return class_count_; }
  std::uint32_t class_chunk_size(std::uint32_t c) const { return classes_[c].chunk_size; }

  std::size_t largest_chunk() const;
  std::uint32_t chunk_count() const { return chunk_count_; }
  std::uint32_t link() const { return link_; }
  // Bytes of a pool with these classes: in the sender half, and (acks) in the receiver half.
  static std::uint64_t chunk_bytes(std::span<const SizeClass> classes);
  static std::uint64_t ack_bytes(std::span<const SizeClass> classes);

 private:
  struct Class {
    std::uint32_t chunk_size = 0, chunk_count = 0, first_chunk = 0;
    std::uint64_t offset = 0;  // from `chunks_`
  };
  // Both on the path of every message, so defined here to be inlined.
  ChunkHeader* header(std::uint32_t chunk) const {  // nullptr for an out-of-range index
    const std::uint32_t c = class_of(chunk);
    if (c == kMaxSizeClasses) return nullptr;
    const Class& size_class = classes_[c];
    const std::uint64_t stride = kChunkHeaderBytes + size_class.chunk_size;
    return reinterpret_cast<ChunkHeader*>(chunks_ + size_class.offset + (chunk - size_class.first_chunk) * stride);
  }
  std::byte* payload_of(ChunkHeader* header) const { return reinterpret_cast<std::byte*>(header) + kChunkHeaderBytes; }
  std::uint32_t class_of(std::uint32_t chunk) const {
    for (std::uint32_t c = 0; c < class_count_; ++c) {
      if (chunk - classes_[c].first_chunk < classes_[c].chunk_count) return c;
    }
    return kMaxSizeClasses;
  }
  bool acknowledged(std::uint32_t chunk, std::uint32_t generation) const {
    return acks_[chunk].load(std::memory_order_acquire) == generation;
  }
  // The sender's test of a PUBLISHED chunk for reuse, through seen_acks_; a miss re-reads
  // the line of ack words holding the chunk's, unless this scan did already (group).
  bool seen_acknowledged(std::uint32_t chunk, std::uint32_t generation, std::uint32_t& refreshed_group);

  std::byte* chunks_ = nullptr;
  std::atomic<std::uint32_t>* acks_ = nullptr;
  Class classes_[kMaxSizeClasses]{};
  std::uint32_t class_count_ = 0;
  std::uint32_t chunk_count_ = 0;
  std::uint32_t link_ = 0;
  // Process-local scan hints per class; relaxed, since a stale one only costs a longer scan.
  std::atomic<std::uint32_t> cursors_[kMaxSizeClasses]{};
  // Process-local copies of the ack words, one per chunk, so that the sender reads the
  // receiver's line of sixteen ack words once for sixteen allocations instead of on each
  // (while the receiver writes beside it). An ack word only moves forward, so a copy that
  // equals a chunk's current generation says what the word itself said: acknowledged.
  // allocate() zeroes a chunk's copy as it takes the chunk (0 is no generation), so a copy
  // never outlives the generation it was read for, even when generations wrap.
  std::unique_ptr<std::atomic<std::uint32_t>[]> seen_acks_;
};

}  // namespace exobus::shm
