// The trace ring: a reader sees what the writer wrote, in order, never a torn record, and
// counts what the writer overwrote before it could read it; the writer never waits.
#include "exobus/shm/trace_ring.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

namespace exobus::shm {
namespace {

// Memory for one ring, zeroed as the daemon lays it out.
struct RingMemory {
  alignas(64) std::byte bytes[kTraceRingBytes] = {};
  TraceRingHeader* ring() { return reinterpret_cast<TraceRingHeader*>(bytes); }
};

// An entry whose every field derives from n, so a torn copy shows.
TraceEntry entry_numbered(std::uint64_t n) {
  TraceEntry entry;
  entry.taken_at_ns = n;
  entry.delay_ns = ~n;
  entry.id.fill(static_cast<std::uint8_t>(n));
  entry.request_id.fill(static_cast<std::uint8_t>(n >> 8));
  entry.sender_type = static_cast<std::uint16_t>(n);
  const std::string payload(100, static_cast<char>('a' + n % 26));
  entry.set_text("user.create", n % 2 == 0 ? "create" : "", payload);
  return entry;
}

void expect_numbered(const TraceEntry& entry, std::uint64_t n) {
  ASSERT_EQ(entry.taken_at_ns, n);
  ASSERT_EQ(entry.delay_ns, ~n);
  ASSERT_EQ(std::memcmp(&entry, &static_cast<const TraceEntry&>(entry_numbered(n)), sizeof(TraceEntry)), 0)
      << "record " << n << " is torn";
}

TEST(TraceRing, ReaderSeesEveryRecordInOrderWhenItKeepsUp) {
  RingMemory memory;
  TraceWriter writer(memory.ring());
  TraceReader reader(memory.ring());
  for (std::uint64_t n = 0; n < 3 * kTraceRecords; ++n) {
    writer.write(entry_numbered(n));
    const std::optional<TraceEntry> read = reader.next();
    ASSERT_TRUE(read.has_value());
    expect_numbered(*read, n);
  }
  EXPECT_FALSE(reader.next().has_value());
  EXPECT_EQ(reader.dropped(), 0u);
}

TEST(TraceRing, ReaderStartsAtTheEndAndSeesOnlyNewRecords) {
  RingMemory memory;
  TraceWriter writer(memory.ring());
  for (std::uint64_t n = 0; n < 10; ++n) writer.write(entry_numbered(n));
  TraceReader reader(memory.ring());
  EXPECT_FALSE(reader.next().has_value());
  writer.write(entry_numbered(10));
  expect_numbered(reader.next().value(), 10);
}

TEST(TraceRing, RecordsOverwrittenBeforeTheyAreReadAreCountedAsDropped) {
  RingMemory memory;
  TraceWriter writer(memory.ring());
  TraceReader reader(memory.ring());
  const std::uint64_t written = kTraceRecords + 36;
  for (std::uint64_t n = 0; n < written; ++n) writer.write(entry_numbered(n));
  std::uint64_t read = 0;
  while (const std::optional<TraceEntry> entry = reader.next()) expect_numbered(*entry, 36 + read++);
  EXPECT_EQ(read, kTraceRecords);
  EXPECT_EQ(reader.dropped(), 36u);
}

TEST(TraceRing, ANewWriterInTheSlotContinuesAfterWhatTheRingHolds) {
  RingMemory memory;
  TraceReader reader(memory.ring());
  {
    TraceWriter first(memory.ring());
    for (std::uint64_t n = 0; n < 5; ++n) first.write(entry_numbered(n));
  }
  TraceWriter second(memory.ring());
  second.write(entry_numbered(5));
  for (std::uint64_t n = 0; n < 6; ++n) expect_numbered(reader.next().value(), n);
  EXPECT_EQ(reader.dropped(), 0u);
}

TEST(TraceRing, AWriterThatDiedMidRecordLeavesItUnpublishedAndTheNextOneRewritesIt) {
  RingMemory memory;
  TraceReader reader(memory.ring());
  TraceWriter(memory.ring()).write(entry_numbered(0));
  // Died between the two sequence stores of record 1: odd, written still 1.
  auto* records = reinterpret_cast<TraceRecord*>(memory.ring() + 1);
  records[1].sequence.store(3, std::memory_order_relaxed);
  expect_numbered(reader.next().value(), 0);
  EXPECT_FALSE(reader.next().has_value());
  TraceWriter(memory.ring()).write(entry_numbered(1));
  expect_numbered(reader.next().value(), 1);
  EXPECT_EQ(reader.dropped(), 0u);
}

TEST(TraceRing, LiesInTheSharedWordsAreBoundedByTheReader) {
  RingMemory memory;
  TraceWriter(memory.ring()).write(entry_numbered(0));
  TraceReader reader(memory.ring());
  memory.ring()->written.store(~std::uint64_t{0} / 4, std::memory_order_relaxed);  // a jump far ahead
  std::uint64_t passes = 0;
  while (reader.next().has_value()) ++passes;
  EXPECT_LE(passes, kTraceRecords);
  EXPECT_GT(reader.dropped(), 0u);
  // Lengths beyond the text are cut to it.
  TraceEntry entry;
  entry.public_length = 200;
  entry.internal_length = 200;
  entry.payload_length = 200;
  EXPECT_EQ(entry.public_name().size() + entry.internal_name().size() + entry.payload_head().size(), TraceEntry::kText);
}

TEST(TraceRing, TextKeepsTheNamesAndCutsThePayload) {
  TraceEntry entry;
  const std::string payload(1000, 'x');
  entry.set_text("user.create", "create", payload);
  EXPECT_EQ(entry.public_name(), "user.create");
  EXPECT_EQ(entry.internal_name(), "create");
  EXPECT_EQ(entry.payload_head(), std::string(TraceEntry::kText - 17, 'x'));
  EXPECT_EQ(entry.payload_size, 1000u);
  EXPECT_NE(entry.flags & kTracePayloadTruncated, 0);
}

// A writer racing readers on other threads: every record a reader returns is whole and
// newer than the last it returned, and what it read plus what it dropped is everything
// written since it started.
TEST(TraceRingStress, ReadersRacingTheWriterNeverSeeATornRecordAndAccountForEveryRecord) {
  RingMemory memory;
  constexpr std::uint64_t kWrites = 2'000'000;
  constexpr std::size_t kReaders = 3;
  TraceWriter writer(memory.ring());
  std::atomic<bool> done{false};
  std::atomic<int> torn{0}, disordered{0}, unaccounted{0};
  std::atomic<std::uint64_t> total_read{0};
  // Every reader starts before the first write: what it reads and drops is all of them.
  std::vector<TraceReader> cursors(kReaders, TraceReader(memory.ring()));
  std::vector<std::thread> readers;
  for (TraceReader& reader : cursors) {
    readers.emplace_back([&] {
      std::uint64_t read = 0, last = 0;
      bool any = false;
      const auto drain = [&] {
        while (const std::optional<TraceEntry> entry = reader.next()) {
          const std::uint64_t n = entry->taken_at_ns;
          if (std::memcmp(&*entry, &static_cast<const TraceEntry&>(entry_numbered(n)), sizeof(TraceEntry)) != 0) {
            torn.fetch_add(1, std::memory_order_relaxed);
          }
          if (any && n <= last) disordered.fetch_add(1, std::memory_order_relaxed);
          any = true;
          last = n;
          ++read;
        }
      };
      while (!done.load(std::memory_order_acquire)) drain();
      drain();
      total_read.fetch_add(read, std::memory_order_relaxed);
      if (read + reader.dropped() != kWrites || last != kWrites - 1)
        unaccounted.fetch_add(1, std::memory_order_relaxed);
    });
  }
  for (std::uint64_t n = 0; n < kWrites; ++n) writer.write(entry_numbered(n));
  done.store(true, std::memory_order_release);
  for (std::thread& reader : readers) reader.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_EQ(disordered.load(), 0);
  EXPECT_EQ(unaccounted.load(), 0);
  EXPECT_GT(total_read.load(), 0u);
}

}  // namespace
}  // namespace exobus::shm
