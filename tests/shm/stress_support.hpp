#pragma once
// Shared pieces of the stress tests: message numbering, per-producer order checks and the
// "seen exactly once" ledger (in shared memory so it also spans processes).
#include <sys/mman.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <stdexcept>
#include <thread>
#include <vector>

#include "exobus/shm/data_plane.hpp"

namespace exobus::shm::testing {

// Sanitizers slow everything down by 5-20x: the stress tests scale their counts down.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
inline constexpr std::uint64_t kScaleDown = 50;
#else
inline constexpr std::uint64_t kScaleDown = 1;
#endif

struct Numbered {
  std::uint32_t producer;
  std::uint32_t sequence;
};

inline std::span<const std::byte> bytes_of(const Numbered& message) {
  return std::as_bytes(std::span(&message, 1));
}

inline Numbered numbered_of(std::span<const std::byte> payload) {
  Numbered message{~0u, ~0u};
  if (payload.size() == sizeof(Numbered)) std::memcpy(&message, payload.data(), sizeof(message));
  return message;
}

// One byte per message, counting deliveries, plus global progress counters.
class Ledger {
 public:
  Ledger(std::uint32_t producers, std::uint32_t per_producer)
      : producers_(producers), per_producer_(per_producer),
        bytes_(sizeof(std::atomic<std::uint64_t>) * 2 + std::uint64_t{producers} * per_producer) {
    void* memory = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) throw std::runtime_error("mmap ledger");
    consumed_ = new (memory) std::atomic<std::uint64_t>(0);
    errors_ = new (consumed_ + 1) std::atomic<std::uint64_t>(0);
    counts_ = reinterpret_cast<std::atomic<std::uint8_t>*>(errors_ + 1);
  }
  ~Ledger() { ::munmap(consumed_, bytes_); }

  // Records one delivery; false for a message that does not exist.
  bool record(const Numbered& message) {
    if (message.producer >= producers_ || message.sequence >= per_producer_) {
      record_error("a message that was never sent");
      return false;
    }
    counts_[std::uint64_t{message.producer} * per_producer_ + message.sequence].fetch_add(1, std::memory_order_relaxed);
    consumed_->fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  void record_error(const char* what) {
    if (errors_->fetch_add(1) == 0) std::fprintf(stderr, "first error: %s\n", what);
  }
  std::uint64_t consumed() const { return consumed_->load(std::memory_order_relaxed); }
  std::uint64_t total() const { return std::uint64_t{producers_} * per_producer_; }
  std::uint64_t errors() const { return errors_->load(); }
  std::uint64_t missing() const { return count_where([](std::uint8_t n) { return n == 0; }); }
  std::uint64_t duplicated() const { return count_where([](std::uint8_t n) { return n > 1; }); }

 private:
  template <class Predicate>
  std::uint64_t count_where(Predicate predicate) const {
    std::uint64_t count = 0;
    for (std::uint64_t i = 0; i < total(); ++i) count += predicate(counts_[i].load()) ? 1 : 0;
    return count;
  }
  std::uint32_t producers_, per_producer_;
  std::size_t bytes_;
  std::atomic<std::uint64_t>* consumed_;
  std::atomic<std::uint64_t>* errors_;
  std::atomic<std::uint8_t>* counts_;
};

// Sends `count` numbered messages; waits (yielding) while the ring or pool is full.
inline void produce(DataPlane& plane, std::uint16_t lane, std::uint32_t producer, std::uint32_t count,
                    std::uint16_t ring, Ledger& ledger) {
  LaneCursor cursor{lane};
  const std::uint16_t targets[] = {ring};
  for (std::uint32_t sequence = 0; sequence < count;) {
    const SendStatus status = plane.send(cursor, bytes_of(Numbered{producer, sequence}), targets).status;
    if (status == SendStatus::ok) {
      ++sequence;
    } else if (status == SendStatus::queue_full || status == SendStatus::pool_exhausted) {
      if (ledger.errors() != 0) return;
      std::this_thread::yield();
    } else {
      ledger.record_error("send failed");
      return;
    }
  }
}

// Takes and acks until every message was consumed; checks that each producer's
// messages arrive at this consumer in increasing order.
inline void consume(DataPlane& plane, std::uint16_t lane, std::uint32_t producers, std::uint16_t ring,
                    Ledger& ledger) {
  LaneCursor cursor{lane};
  std::vector<std::int64_t> last(producers, -1);
  while (ledger.consumed() < ledger.total() && ledger.errors() == 0) {
    const TakeOutcome outcome = plane.take(cursor, ring, 0);
    if (outcome.status == TakeOutcomeStatus::empty) {
      std::this_thread::yield();
      continue;
    }
    if (outcome.status != TakeOutcomeStatus::ok || outcome.delivery.redelivered()) {
      ledger.record_error(outcome.status != TakeOutcomeStatus::ok ? "take failed" : "redelivered");
      return;
    }
    const Numbered message = numbered_of(outcome.delivery.payload);
    if (plane.ack(outcome.delivery.lease) != LeaseStatus::ok) {
      ledger.record_error("ack failed");
      return;
    }
    if (!ledger.record(message)) return;
    if (static_cast<std::int64_t>(message.sequence) <= last[message.producer]) {
      ledger.record_error("per-producer order broken");
      return;
    }
    last[message.producer] = message.sequence;
  }
}

inline LayoutSpec stress_spec() {
  LayoutSpec spec;
  spec.size_classes = {{256, 8192, 0, 0, 0}};
  spec.rings = {{4096, 60000, 5, kNoRing}};
  spec.max_instances = 16;
  spec.lanes_per_instance = 2;
  spec.leases_per_lane = 64;
  return spec;
}

}  // namespace exobus::shm::testing
