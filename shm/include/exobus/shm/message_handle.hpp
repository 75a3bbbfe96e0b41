#pragma once
// A message handle names one message in one 64-bit word, so it is written and read in
// shared memory without tearing.
//
//  MessageHandle (8 bytes)
//  0                       24                40                      64
//  +-----------------------+-----------------+-----------------------+
//  |  chunk index          |  link           |  generation (24 bits) |
//  +-----------------------+-----------------+-----------------------+
//  chunk index: the chunk in its link's pool, across all size classes.
//  link:        the sender-to-receiver link whose pool holds the chunk (link.hpp). A
//               receiver accepts a handle only under a link whose receiver is its own type,
//               so a handle cannot point it at another tenant's memory.
//  generation:  the chunk's generation when the message was written; never 0, so the
//               all-zero word is the null handle. A stale handle (chunk acknowledged and
//               reused) fails the generation check instead of touching the new message.
#include <cstdint>

#include "exobus/shm/packed_word.hpp"

namespace exobus::shm {

inline constexpr std::uint32_t kGenerationBits = 24;
inline constexpr std::uint32_t kGenerationMask = (1u << kGenerationBits) - 1;
inline constexpr std::uint32_t kMaxChunksPerPool = (1u << 24) - 1;
inline constexpr std::uint32_t kMaxLinks = 1u << 16;

// Generations count 1, 2, ..., 2^24-1, 1, ...: zero is reserved for "null".
constexpr std::uint32_t next_generation(std::uint32_t generation) {
  const std::uint32_t next = (generation + 1) & kGenerationMask;
  return next == 0 ? 1 : next;
}

// Whether generation `a` is `b` or came after it: the signed distance modulo 2^24. Holds
// while no chunk is reused 2^23 times between the two (a chunk reused every microsecond
// takes over eight seconds to get there, and the comparison only guards a late ack).
constexpr bool generation_at_or_after(std::uint32_t a, std::uint32_t b) {
  const std::uint32_t distance = (a - b) & kGenerationMask;
  return distance < (1u << (kGenerationBits - 1));
}

class MessageHandle {
 public:
  using Chunk = BitField<0, 24>;
  using Link = BitField<24, 16>;
  using Generation = BitField<40, kGenerationBits>;
  static_assert(fields_in_order<Chunk, Link, Generation>());

  constexpr MessageHandle() = default;
  constexpr MessageHandle(std::uint32_t chunk, std::uint32_t link, std::uint32_t generation)
      : word_(Chunk::put(chunk) | Link::put(link) | Generation::put(generation)) {}
  static constexpr MessageHandle from_word(std::uint64_t word) {
    MessageHandle handle;
    handle.word_ = word;
    return handle;
  }

  constexpr std::uint64_t word() const { return word_; }
  constexpr std::uint32_t chunk() const { return static_cast<std::uint32_t>(Chunk::get(word_)); }
  constexpr std::uint32_t link() const { return static_cast<std::uint32_t>(Link::get(word_)); }
  constexpr std::uint32_t generation() const { return static_cast<std::uint32_t>(Generation::get(word_)); }
  constexpr bool is_null() const { return word_ == 0; }
  friend constexpr bool operator==(MessageHandle, MessageHandle) = default;

 private:
  std::uint64_t word_ = 0;
};

}  // namespace exobus::shm
