#include "exobus/shm/trace_ring.hpp"

#include <algorithm>
#include <cstring>

namespace exobus::shm {

namespace {

TraceRecord* records_of(TraceRingHeader* ring) { return reinterpret_cast<TraceRecord*>(ring + 1); }
const TraceRecord* records_of(const TraceRingHeader* ring) { return reinterpret_cast<const TraceRecord*>(ring + 1); }

// A length read from shared memory, cut to what is left of the text.
std::size_t bounded(std::size_t length, std::size_t used) {
  return std::min(length, TraceEntry::kText - std::min(used, TraceEntry::kText));
}

}  // namespace

std::string_view TraceEntry::public_name() const { return {text, bounded(public_length, 0)}; }

std::string_view TraceEntry::internal_name() const {
  const std::size_t from = public_name().size();
  return {text + from, bounded(internal_length, from)};
}

std::string_view TraceEntry::payload_head() const {
  const std::size_t from = public_name().size() + internal_name().size();
  return {text + from, bounded(payload_length, from)};
}

void TraceEntry::set_text(std::string_view public_name, std::string_view internal_name, std::string_view payload) {
  public_length = static_cast<std::uint8_t>(bounded(std::min<std::size_t>(public_name.size(), 255), 0));
  internal_length = static_cast<std::uint8_t>(bounded(std::min<std::size_t>(internal_name.size(), 255), public_length));
  payload_length = static_cast<std::uint8_t>(
      bounded(std::min<std::size_t>(payload.size(), 255), std::size_t{public_length} + internal_length));
  // copy_n, not memcpy: an empty view may have no data at all (memcpy from null is undefined).
  std::copy_n(public_name.data(), public_length, text);
  std::copy_n(internal_name.data(), internal_length, text + public_length);
  std::copy_n(payload.data(), payload_length, text + public_length + internal_length);
  payload_size = static_cast<std::uint32_t>(std::min<std::size_t>(payload.size(), UINT32_MAX));
  if (payload_length < payload.size()) flags |= kTracePayloadTruncated;
}

TraceWriter::TraceWriter(TraceRingHeader* ring) : ring_(ring), next_(ring->written.load(std::memory_order_relaxed)) {}

void TraceWriter::write(const TraceEntry& entry) {
  TraceRecord& record = records_of(ring_)[next_ % kTraceRecords];
  // Odd first, and the fence keeps every word store below after it: a reader that sees a
  // new word also sees the sequence change (its acquire fence pairs with this one).
  record.sequence.store(2 * next_ + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  std::uint64_t words[kTraceWords];
  std::memcpy(words, &entry, sizeof(entry));
  for (std::size_t k = 0; k < kTraceWords; ++k) record.words[k].store(words[k], std::memory_order_relaxed);
  // Pairs with the reader's acquire load of the sequence: the words are complete.
  record.sequence.store(2 * next_ + 2, std::memory_order_release);
  ++next_;
  // Pairs with the reader's acquire load of written.
  ring_->written.store(next_, std::memory_order_release);
}

TraceReader::TraceReader(const TraceRingHeader* ring)
    : ring_(ring), cursor_(ring->written.load(std::memory_order_acquire)) {}

std::optional<TraceEntry> TraceReader::next() {
  const std::uint64_t written = ring_->written.load(std::memory_order_acquire);
  // A count that went back: a new instance in the slot whose ring was cleared, or a lie.
  // Either way, follow the writer from where it is.
  if (written < cursor_) cursor_ = written;
  // The ring keeps the last kTraceRecords: older ones are gone.
  if (written - cursor_ > kTraceRecords) {
    dropped_ += written - cursor_ - kTraceRecords;
    cursor_ = written - kTraceRecords;
  }
  // Each pass either returns or moves the cursor on, and the cursor never passes written:
  // at most kTraceRecords passes.
  while (cursor_ < written) {
    const TraceRecord& record = records_of(ring_)[cursor_ % kTraceRecords];
    const std::uint64_t complete = 2 * cursor_ + 2;
    // Pairs with the writer's release store of the sequence.
    const std::uint64_t before = record.sequence.load(std::memory_order_acquire);
    std::uint64_t words[kTraceWords];
    for (std::size_t k = 0; k < kTraceWords; ++k) words[k] = record.words[k].load(std::memory_order_relaxed);
    // Pairs with the writer's release fence: if any word read is of a later record, the
    // sequence read below is that record's odd value or later.
    std::atomic_thread_fence(std::memory_order_acquire);
    const std::uint64_t after = record.sequence.load(std::memory_order_relaxed);
    ++cursor_;
    if (before != complete || after != complete) {
      // Overwritten before or while it was read (an honest writer publishes written only
      // after the record's sequence, so a smaller one is a lie): skipped, counted.
      ++dropped_;
      continue;
    }
    TraceEntry entry;
    std::memcpy(&entry, words, sizeof(entry));
    return entry;
  }
  return std::nullopt;
}

}  // namespace exobus::shm
