#pragma once
// The delivery trace of one receiving loop of one instance: the last kTraceRecords
// deliveries it handled, for `exobus tail`. Lossy by design: the writer never waits for a
// reader and simply overwrites the oldest record, and a reader that falls behind counts
// what it missed. A trace ring lives in its type's tenant memory (tenant.hpp, the trace
// block), two per instance slot: one for the receiving thread's commands, one for the
// replies (written by whoever holds the instance's reply turn, one thread at a time).
//
//  TraceRingHeader (64 bytes)
//  0               8                                                               64
//  +---------------+---------------------------------------------------------------+
//  | written       |  (padding: the records start on their own line)               |
//  +---------------+---------------------------------------------------------------+
//  written: records ever completed in this ring, stored (release) by the writer after each
//  record's final sequence. Record n lies at index n % kTraceRecords.
//
//  TraceRecord (256 bytes, four lines)
//  0               8                                                              256
//  +---------------+---------------------------------------------------------------+
//  | sequence      |  words[31]: a TraceEntry, copied in 8-byte words               |
//  +---------------+---------------------------------------------------------------+
//  sequence: a seqlock per record, written by the writer alone: 2n + 1 while record n is
//  being written, 2n + 2 once it is complete. A reader wanting record n checks that the
//  sequence reads 2n + 2 before and after copying the words: anything else means the
//  record was overwritten (greater, or changed meanwhile) or the writer lies (smaller: an
//  honest writer publishes written only after the sequence), and it is counted as dropped.
//
// Every word is atomic and accessed with a named order, so a reader racing the writer
// reads a torn record only into its own copy, which the second sequence check discards.
//
// A death of the writer between the two sequence stores leaves one record odd and written
// short of it: readers never reach it, and the next instance in the slot starts at written
// and rewrites it. A writer that lies (the ring is in its own type's memory, which only its
// type writes) can only make a tail show wrong or no lines of its own type: the reader
// bounds every length it reads and every cursor jump, and nothing but a tail reads these
// words.
//
// Not promised: a reader sees every delivery (it sees the last kTraceRecords of each ring
// at most, and says how many it missed); an order across rings (the tail orders by the
// entries' clock stamps).
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>

namespace exobus::shm {

inline constexpr std::uint32_t kTraceRecords = 64;  // per ring
inline constexpr std::uint32_t kTraceRingsPerInstance = 2;
enum class TraceLoop : std::uint32_t { commands = 0, replies = 1 };

// TraceEntry::flags
inline constexpr std::uint8_t kTraceRedelivered = 1u << 0;
inline constexpr std::uint8_t kTraceStamped = 1u << 1;  // delay_ns is the queueing delay
inline constexpr std::uint8_t kTraceReply = 1u << 2;
inline constexpr std::uint8_t kTracePayloadTruncated = 1u << 3;

// One delivery as traced. text holds, back to back, the public name, the receiver's
// internal name (internal_length 0: not translated) and the head of the payload.
struct TraceEntry {
  std::uint64_t taken_at_ns = 0;  // CLOCK_MONOTONIC when the receiver handled it
  std::uint64_t delay_ns = 0;     // from the send stamp to taken_at_ns (kTraceStamped)
  std::array<std::uint8_t, 16> id{};
  std::array<std::uint8_t, 16> request_id{};
  std::uint32_t payload_size = 0;  // of the whole payload
  std::uint16_t sender_type = 0;
  std::uint16_t sender_member = 0;
  std::uint16_t deliveries = 0;  // earlier deliveries of the message (0: its first)
  std::uint8_t flags = 0;
  std::uint8_t public_length = 0;
  std::uint8_t internal_length = 0;
  std::uint8_t payload_length = 0;  // bytes of the payload kept in text
  char text[186] = {};

  static constexpr std::size_t kText = sizeof(text);
  std::string_view public_name() const;
  std::string_view internal_name() const;
  std::string_view payload_head() const;
  // Stores the names and as much of the payload as fits (names of over 255 bytes are cut).
  void set_text(std::string_view public_name, std::string_view internal_name, std::string_view payload);
};
static_assert(sizeof(TraceEntry) == 248 && std::is_trivially_copyable_v<TraceEntry>);

inline constexpr std::size_t kTraceWords = sizeof(TraceEntry) / 8;

struct alignas(64) TraceRecord {
  std::atomic<std::uint64_t> sequence;
  std::atomic<std::uint64_t> words[kTraceWords];
};
static_assert(sizeof(TraceRecord) == 256 && alignof(TraceRecord) == 64 && std::is_standard_layout_v<TraceRecord>);

struct alignas(64) TraceRingHeader {
  std::atomic<std::uint64_t> written;
};
static_assert(sizeof(TraceRingHeader) == 64 && std::is_standard_layout_v<TraceRingHeader>);

inline constexpr std::uint64_t kTraceRingBytes = sizeof(TraceRingHeader) + kTraceRecords * sizeof(TraceRecord);

// The writer's side: one thread at a time per ring.
class TraceWriter {
 public:
  TraceWriter() = default;
  // Continues after what the ring holds (a previous instance in the slot may have written).
  explicit TraceWriter(TraceRingHeader* ring);
  bool attached() const { return ring_ != nullptr; }
  // Never waits: overwrites the oldest record.
  void write(const TraceEntry& entry);

 private:
  TraceRingHeader* ring_ = nullptr;
  std::uint64_t next_ = 0;  // this process's own count: the shared word is only published
};

// A reader's side: its own cursor, in its own process.
class TraceReader {
 public:
  TraceReader() = default;
  // Starts at the ring's end: only deliveries from now on are read.
  explicit TraceReader(const TraceRingHeader* ring);
  // The next complete record, or nothing when the reader caught up. Records overwritten
  // before they were read are added to dropped().
  std::optional<TraceEntry> next();
  std::uint64_t dropped() const { return dropped_; }
  std::uint64_t take_dropped() { return std::exchange(dropped_, 0); }

 private:
  const TraceRingHeader* ring_ = nullptr;
  std::uint64_t cursor_ = 0;
  std::uint64_t dropped_ = 0;
};

}  // namespace exobus::shm
