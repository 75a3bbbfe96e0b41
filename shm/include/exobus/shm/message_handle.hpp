#pragma once
// A message handle names one delivery target of one chunk in one 64-bit word, so it is
// written and read in shared memory without tearing.
//
//  MessageHandle (8 bytes)
//  0                               32        40                      64
//  +-------------------------------+---------+-----------------------+
//  |  chunk index                  | target  |  generation (24 bits) |
//  +-------------------------------+---------+-----------------------+
//  chunk index: global index across all size classes.
//  target:      which bit of the chunk's pending-target mask this delivery clears on ack.
//  generation:  the chunk's generation when the message was published; never 0, so the
//               all-zero word is the null handle. A stale handle (chunk freed and reused)
//               fails the generation check instead of touching the new message.
#include <cstdint>

#include "exobus/shm/packed_word.hpp"

namespace exobus::shm {

inline constexpr std::uint32_t kMaxTargets = 32;  // bits of the pending-target mask
inline constexpr std::uint32_t kGenerationBits = 24;
inline constexpr std::uint32_t kGenerationMask = (1u << kGenerationBits) - 1;

// Generations count 1, 2, ..., 2^24-1, 1, ...: zero is reserved for "null".
constexpr std::uint32_t next_generation(std::uint32_t generation) {
  const std::uint32_t next = (generation + 1) & kGenerationMask;
  return next == 0 ? 1 : next;
}

class MessageHandle {
 public:
  using Chunk = BitField<0, 32>;
  using Target = BitField<32, 8>;
  using Generation = BitField<40, kGenerationBits>;
  static_assert(fields_in_order<Chunk, Target, Generation>());

  constexpr MessageHandle() = default;
  constexpr MessageHandle(std::uint32_t chunk, std::uint32_t target, std::uint32_t generation)
      : word_(Chunk::put(chunk) | Target::put(target) | Generation::put(generation)) {}
  static constexpr MessageHandle from_word(std::uint64_t word) {
    MessageHandle handle;
    handle.word_ = word;
    return handle;
  }

  constexpr std::uint64_t word() const { return word_; }
  constexpr std::uint32_t chunk() const { return static_cast<std::uint32_t>(Chunk::get(word_)); }
  constexpr std::uint32_t target() const { return static_cast<std::uint32_t>(Target::get(word_)); }
  constexpr std::uint32_t generation() const { return static_cast<std::uint32_t>(Generation::get(word_)); }
  constexpr bool is_null() const { return word_ == 0; }
  constexpr MessageHandle with_target(std::uint32_t target) const {
    return MessageHandle(chunk(), target, generation());
  }
  friend constexpr bool operator==(MessageHandle, MessageHandle) = default;

 private:
  std::uint64_t word_ = 0;
};

}  // namespace exobus::shm
