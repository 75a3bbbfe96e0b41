#pragma once
// Shared pieces of the stress tests (threads: stress_test.cpp; processes:
// multiprocess_test.cpp): message numbering, the "seen exactly once" ledger (in shared
// memory, so it also spans processes), producers and consumers of numbered messages, and
// the bus shape they run on.
#include <sys/mman.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <span>
#include <utility>
#include <stdexcept>
#include <thread>
#include <vector>

#include "exobus/shm/data_plane.hpp"
#include "scratch_bus.hpp"

namespace exobus::shm::testing {

// Sanitizers slow everything down by 5-20x: the stress tests scale their counts down.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
inline constexpr std::uint64_t kScaleDown = 20;
#else
inline constexpr std::uint64_t kScaleDown = 1;
#endif

struct Numbered {
  std::uint32_t producer;
  std::uint32_t sequence;
};

inline std::span<const std::byte> bytes_of(const Numbered& message) { return std::as_bytes(std::span(&message, 1)); }

inline Numbered numbered_of(std::span<const std::byte> payload) {
  Numbered message{~0u, ~0u};
  if (payload.size() == sizeof(Numbered)) std::memcpy(&message, payload.data(), sizeof(message));
  return message;
}

// Memory every process forked after it was made shares (MAP_SHARED | MAP_ANONYMOUS).
template <class T>
class Shared {
 public:
  explicit Shared(std::size_t count) : count_(count) {
    void* memory = ::mmap(nullptr, sizeof(T) * count, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) throw std::runtime_error("cannot map shared test memory");
    items_ = static_cast<T*>(memory);
    for (std::size_t k = 0; k < count; ++k) new (items_ + k) T{};
  }
  ~Shared() { ::munmap(items_, sizeof(T) * count_); }
  Shared(const Shared&) = delete;
  Shared& operator=(const Shared&) = delete;
  T& operator[](std::size_t k) const { return items_[k]; }

 private:
  std::size_t count_;
  T* items_;
};

// What one type received of every message: deliveries and acks per message, and the
// totals. Any process that maps it may record; the test reads it at the end.
class Ledger {
 public:
  Ledger(std::uint32_t producers, std::uint32_t per_producer)
      : producers_(producers), per_producer_(per_producer), totals_(kTotals),
        delivered_(std::uint64_t{producers} * per_producer), acked_(std::uint64_t{producers} * per_producer) {}

  std::uint64_t size() const { return std::uint64_t{producers_} * per_producer_; }
  bool known(const Numbered& message) const {
    return message.producer < producers_ && message.sequence < per_producer_;
  }
  std::uint64_t index(const Numbered& message) const {
    return std::uint64_t{message.producer} * per_producer_ + message.sequence;
  }

  // One delivery of `message`; returns how many earlier deliveries it had. The first one
  // counts as distinct.
  std::uint32_t delivered(const Numbered& message) {
    const std::uint32_t earlier = delivered_[index(message)].fetch_add(1, std::memory_order_relaxed);
    if (earlier == 0) totals_[kDistinct].fetch_add(1, std::memory_order_release);
    return earlier;
  }
  // Recorded just before the ack; the first one counts as distinct.
  void acked(const Numbered& message) {
    if (acked_[index(message)].fetch_add(1, std::memory_order_relaxed) == 0) {
      totals_[kAcked].fetch_add(1, std::memory_order_release);
    }
  }

  void error(const char* what) {
    if (totals_[kErrors].fetch_add(1) == 0) std::fprintf(stderr, "first error: %s\n", what);
  }
  std::uint64_t errors() const { return totals_[kErrors].load(); }
  std::uint64_t distinct() const { return totals_[kDistinct].load(std::memory_order_acquire); }
  std::uint64_t acked_distinct() const { return totals_[kAcked].load(std::memory_order_acquire); }
  std::uint32_t deliveries_of(std::uint64_t k) const { return delivered_[k].load(std::memory_order_relaxed); }
  std::uint32_t acks_of(std::uint64_t k) const { return acked_[k].load(std::memory_order_relaxed); }

  // Messages (by index) for which predicate(deliveries, acks) holds.
  template <class Predicate>
  std::uint64_t count_where(Predicate predicate) const {
    std::uint64_t count = 0;
    for (std::uint64_t k = 0; k < size(); ++k) count += predicate(deliveries_of(k), acks_of(k)) ? 1 : 0;
    return count;
  }

 private:
  enum Total : std::size_t { kDistinct, kAcked, kErrors, kTotals };
  std::uint32_t producers_, per_producer_;
  Shared<std::atomic<std::uint64_t>> totals_;
  Shared<std::atomic<std::uint32_t>> delivered_;
  Shared<std::atomic<std::uint32_t>> acked_;
};

// What each producer's sends came to, for tests where a send may be refused.
enum class Outcome : std::uint8_t { unknown = 0, sent = 1, refused = 2 };

class Outcomes {
 public:
  Outcomes(std::uint32_t producers, std::uint32_t per_producer)
      : per_producer_(per_producer), outcomes_(std::uint64_t{producers} * per_producer), totals_(2) {}
  void record(const Numbered& message, Outcome outcome) {
    outcomes_[std::uint64_t{message.producer} * per_producer_ + message.sequence].store(outcome,
                                                                                        std::memory_order_relaxed);
    totals_[outcome == Outcome::sent ? 0 : 1].fetch_add(1, std::memory_order_release);
  }
  Outcome of(std::uint64_t k) const { return outcomes_[k].load(std::memory_order_relaxed); }
  std::uint64_t sent() const { return totals_[0].load(std::memory_order_acquire); }
  std::uint64_t refused() const { return totals_[1].load(std::memory_order_acquire); }

 private:
  std::uint32_t per_producer_;
  Shared<std::atomic<Outcome>> outcomes_;
  Shared<std::atomic<std::uint64_t>> totals_;
};

// One instance's producer: sends `count` numbered messages to `to` (all its destinations at
// once). Waits (yielding) while a channel is full or a pool exhausted, or, with `outcomes`,
// tries each message once and records whether it went out.
inline void produce(DataPlane& plane, std::uint32_t producer, std::uint32_t count, std::span<const Destination> to,
                    Ledger& errors, Outcomes* outcomes = nullptr) {
  LaneCursor cursor{plane.lane(kFirstSendLane)};
  for (std::uint32_t sequence = 0; sequence < count && errors.errors() == 0;) {
    const Numbered message{producer, sequence};
    const SendAttempt sent = send_to(plane, cursor, to, bytes_of(message));
    const bool back_pressure = sent.allocation == PoolStatus::exhausted || sent.result.status == SendStatus::queue_full;
    if (!sent.ok() && !back_pressure) {
      errors.error("send failed");
      return;
    }
    if (outcomes != nullptr) {
      outcomes->record(message, sent.ok() ? Outcome::sent : Outcome::refused);
      ++sequence;
      if (!sent.ok()) std::this_thread::yield();  // let the consumers make room meanwhile
    } else if (sent.ok()) {
      ++sequence;
    } else {
      std::this_thread::yield();
    }
  }
}

// How a consumer treats what it takes.
struct ConsumerRules {
  bool check_order = true;          // each producer's messages arrive in increasing order
  std::uint32_t release_every = 0;  // release every n-th delivery of a message delivered fewer than 2 times
  std::uint32_t batch = 1;          // deliveries held before they are all acknowledged
};

// One instance's consumer of `link`'s type channel (and its type's retry ring): takes and
// acknowledges until done() holds and both are empty. Every delivery of a message already
// delivered must be flagged redelivered; with no release and no death, none may be.
template <class Done>
void consume(DataPlane& plane, Link& link, Ledger& ledger, const ConsumerRules& rules, Done&& done) {
  LaneCursor cursor{plane.lane(kCommandLane)};
  std::vector<std::int64_t> last;
  std::vector<std::pair<Numbered, LeaseToken>> held;
  const auto settle = [&] {
    for (const auto& [message, lease] : held) {
      ledger.acked(message);  // before the ack: a consumer killed in between leaves it redelivered
      if (plane.ack(lease) != LeaseStatus::ok) return false;
    }
    held.clear();
    return true;
  };
  std::uint64_t taken = 0;
  for (bool idle = false; ledger.errors() == 0;) {
    const bool from_retry = (taken & 1) != 0;
    TakeOutcome outcome = from_retry ? plane.take_retry(cursor, 0) : plane.take(cursor, link, link.type_channel(), 0);
    if (outcome.status == TakeOutcomeStatus::empty) {
      outcome = from_retry ? plane.take(cursor, link, link.type_channel(), 0) : plane.take_retry(cursor, 0);
    }
    if (outcome.status == TakeOutcomeStatus::empty) {
      if (!settle()) return ledger.error("ack failed");
      if (idle && done()) return;
      idle = done();  // one more round of both after done(): nothing published before it is left
      std::this_thread::yield();
      continue;
    }
    idle = false;
    ++taken;
    if (outcome.status != TakeOutcomeStatus::ok) return ledger.error("take failed");
    const Delivery& delivery = outcome.delivery;
    const Numbered message = numbered_of(delivery.payload);
    if (!ledger.known(message)) return ledger.error("a message that was never sent");
    const std::uint32_t earlier = ledger.delivered(message);
    if (earlier > 0 && !delivery.redelivered()) return ledger.error("an unflagged duplicate");
    if (rules.check_order && !delivery.redelivered()) {
      if (last.size() <= message.producer) last.resize(message.producer + 1, -1);
      if (static_cast<std::int64_t>(message.sequence) <= last[message.producer]) {
        return ledger.error("a producer's order broken");
      }
      last[message.producer] = message.sequence;
    }
    if (rules.release_every != 0 && earlier < 2 && taken % rules.release_every == 0) {
      const LeaseStatus released = plane.release(delivery.lease, cursor);
      if (released != LeaseStatus::ok) {
        return ledger.error(released == LeaseStatus::late ? "release late" : "release found the retry ring full");
      }
      continue;
    }
    held.emplace_back(message, delivery.lease);
    if (held.size() >= rules.batch && !settle()) return ledger.error("ack failed");
  }
}

// A bus for many messages: 8192 chunks of 256 bytes per link, 4096-slot channels.
inline ScratchOptions stress_options() {
  ScratchOptions options;
  options.channel_capacity = 4096;
  options.reply_capacity = 64;
  options.instances = 8;
  options.lanes_per_instance = 4;
  options.leases_per_lane = 64;
  options.delivery_limit = 255;
  options.size_classes = {{256, 8192}};
  return options;
}

}  // namespace exobus::shm::testing
