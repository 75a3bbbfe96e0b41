#pragma once
// The chunk pool: size-classed message buffers in the data segment, allocated and freed
// lock-free by any process, each chunk's fate recorded in one atomic state word.
//
//  Chunk (64-byte header + chunk_size payload bytes; chunk_size is a power of two >= 256,
//  so every chunk starts on a cache line)
//  0               8       12                                             64
//  +---------------+-------+----------------------------------------------+----------...
//  |  state        |length |  unused                                      |  payload
//  +---------------+-------+----------------------------------------------+----------...
//  state:  see ChunkState; changed only by CAS or by the owner of an ALLOCATED chunk.
//  length: payload bytes; written by the allocating owner before it publishes (release),
//          read after an acquire of a PUBLISHED state. Always re-checked <= chunk_size.
//
//  ChunkState (8 bytes)
//  0                               32     36     40                      64
//  +-------------------------------+------+------+-----------------------+
//  |  data                         | kind | 0    |  generation           |
//  +-------------------------------+------+------+-----------------------+
//  FREE:       data 0. generation is the last one used.
//  ALLOCATED:  data = owner instance index. Only that owner writes the payload; if it dies
//              the recovery of that instance frees the chunk (it is findable by owner).
//  PUBLISHED:  data = mask of targets not yet acknowledged. Each delivery target clears its
//              own bit exactly once (idempotent, generation-checked); the CAS that clears
//              the last bit turns the chunk FREE. There is no counter that a crash between
//              "counted" and "recorded" could skew: clearing a bit twice is harmless.
//
// Invariants
// - Every chunk is in exactly one state; a chunk is reachable for writing only by the
//   owner recorded in its ALLOCATED state, so a dead writer's chunks are found by a scan.
// - generation changes on every allocation (never 0), so a handle from an earlier life of
//   the chunk fails validation instead of reading or acknowledging the new message.
// - free + allocated + published == chunk count at every instant (audit()).
//
// Non-guarantees: a reader whose lease was reclaimed (expired while its process was stopped,
// say) may read a chunk while it is being reused: it sees another message's bytes, or
// garbage, but never leaves the chunk (length is bounds-checked). intact(), asked after
// reading, tells whether what was read is still the handle's message (a seqlock check).
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>

#include "exobus/shm/message_handle.hpp"

namespace exobus::shm {

inline constexpr std::size_t kChunkHeaderBytes = 64;
inline constexpr std::uint32_t kMaxSizeClasses = 8;
inline constexpr std::uint32_t kMinChunkSize = 256;
inline constexpr std::uint32_t kMaxChunkSize = 1u << 20;

enum class ChunkKind : std::uint8_t { free = 0, allocated = 1, published = 2 };

struct ChunkState {
  using Data = BitField<0, 32>;
  using Kind = BitField<32, 4>;
  using Generation = BitField<40, kGenerationBits>;
  static_assert(fields_in_order<Data, Kind, Generation>());

  std::uint32_t data;
  ChunkKind kind;
  std::uint32_t generation;

  static constexpr ChunkState decode(std::uint64_t word) {
    return {static_cast<std::uint32_t>(Data::get(word)), static_cast<ChunkKind>(Kind::get(word)),
            static_cast<std::uint32_t>(Generation::get(word))};
  }
  constexpr std::uint64_t encode() const {
    return Data::put(data) | Kind::put(static_cast<std::uint8_t>(kind)) | Generation::put(generation);
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

// Where one size class lives in the segment; written once by the segment's creator.
//  0       4       8       12      16              24
//  +-------+-------+-------+-------+---------------+
//  |size   |count  |first  |  -    |  offset       |
//  +-------+-------+-------+-------+---------------+
struct SizeClassLayout {
  std::uint32_t chunk_size;
  std::uint32_t chunk_count;
  std::uint32_t first_chunk;  // global index of its first chunk
  std::uint32_t reserved;
  std::uint64_t offset;  // from the segment base
};
static_assert(sizeof(SizeClassLayout) == 24 && alignof(SizeClassLayout) == 8 &&
              std::is_trivially_copyable_v<SizeClassLayout> && std::is_standard_layout_v<SizeClassLayout>);
static_assert(offsetof(SizeClassLayout, chunk_size) == 0 && offsetof(SizeClassLayout, chunk_count) == 4 &&
              offsetof(SizeClassLayout, first_chunk) == 8 && offsetof(SizeClassLayout, reserved) == 12 &&
              offsetof(SizeClassLayout, offset) == 16);

enum class PoolStatus : std::uint8_t { ok, too_large, exhausted, stale };

struct Allocation {
  PoolStatus status;
  MessageHandle handle;         // target 0; the sender sets targets when it fans out
  std::span<std::byte> buffer;  // the whole chunk payload area
};

struct ChunkView {
  bool valid;  // false: stale or corrupt handle
  std::span<const std::byte> payload;
};

struct PoolAudit {
  std::uint64_t free = 0, allocated = 0, published = 0, total = 0;
};

enum class TargetRelease : std::uint8_t { still_pending, freed, stale };

class ChunkPool {
 public:
  ChunkPool() = default;
  // classes were validated against the segment size when the segment was opened.
  ChunkPool(std::byte* segment_base, std::span<const SizeClassLayout> classes);

  // Allocate a chunk for at least `size` bytes, owned by `owner` until published.
  // cursors[c] is the caller's scan position in class c (process-local, so concurrent
  // allocators start apart and a lone sender walks the pool in order).
  Allocation allocate(std::size_t size, std::uint16_t owner, std::span<std::uint32_t, kMaxSizeClasses> cursors);
  // Owner only: record the payload length and hand the chunk to `target_mask` targets.
  void publish(MessageHandle handle, std::uint32_t length, std::uint32_t target_mask);
  // Owner only: give back an allocated chunk that will not be sent.
  void abandon(MessageHandle handle, std::uint16_t owner);

  // The payload of a published message whose `handle.target()` bit is still pending.
  ChunkView read(MessageHandle handle) const;
  // Asked after reading a view from read(): whether the chunk still holds the handle's
  // message, so that every byte read was its own. Only a new allocation, which changes the
  // generation, rewrites a chunk; the acquire fence orders the reads before the check and
  // pairs with the release fence in allocate().
  bool intact(MessageHandle handle) const;
  bool still_pending(MessageHandle handle) const;
  // Clear the handle's target bit (an ack, or recovery dropping an undelivered target).
  TargetRelease release_target(MessageHandle handle);

  // Recovery: free every chunk that `owner` allocated and did not publish.
  std::uint32_t reclaim_allocations_of(std::uint16_t owner);
  PoolAudit audit() const;

  std::size_t largest_chunk() const;
  std::uint32_t chunk_count() const { return chunk_count_; }

 private:
  ChunkHeader* header(std::uint32_t chunk) const;  // nullptr for an out-of-range index
  std::byte* payload_of(ChunkHeader* header) const { return reinterpret_cast<std::byte*>(header) + kChunkHeaderBytes; }
  std::uint32_t class_of(std::uint32_t chunk) const;

  std::byte* base_ = nullptr;
  SizeClassLayout classes_[kMaxSizeClasses]{};
  std::uint32_t class_count_ = 0;
  std::uint32_t chunk_count_ = 0;
};

}  // namespace exobus::shm
