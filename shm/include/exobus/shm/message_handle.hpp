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
  constexpr MessageHandle() = default;
  constexpr MessageHandle(std::uint32_t chunk, std::uint32_t target, std::uint32_t generation)
      : word_(std::uint64_t{chunk} | (std::uint64_t{target & 0xff} << 32) |
              (std::uint64_t{generation & kGenerationMask} << 40)) {}
  static constexpr MessageHandle from_word(std::uint64_t word) {
    MessageHandle handle;
    handle.word_ = word;
    return handle;
  }

  constexpr std::uint64_t word() const { return word_; }
  constexpr std::uint32_t chunk() const { return static_cast<std::uint32_t>(word_); }
  constexpr std::uint32_t target() const { return static_cast<std::uint32_t>(word_ >> 32) & 0xff; }
  constexpr std::uint32_t generation() const { return static_cast<std::uint32_t>(word_ >> 40); }
  constexpr bool is_null() const { return word_ == 0; }
  constexpr MessageHandle with_target(std::uint32_t target) const {
    return MessageHandle(chunk(), target, generation());
  }
  friend constexpr bool operator==(MessageHandle, MessageHandle) = default;

 private:
  std::uint64_t word_ = 0;
};

}  // namespace exobus::shm
