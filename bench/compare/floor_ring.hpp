#pragma once
// The "floor" of the comparison: the least work two processes can do to move a message through
// shared memory. A single-producer single-consumer ring of fixed slots, busy-spinning on both
// sides, with each side caching the other's index (rigtorp's SPSCQueue) so that in the common
// case a side touches only its own index line and the slot. Nothing a real bus needs is here:
// no fan-out, no crash recovery, no sleeping; any bus is expected to be slower than this.
//
// Not promised: more than one producer or consumer per ring; progress if the peer dies
// (the other side spins forever; the harness watchdog kills it).
//
// Layout of one ring in the segment (offsets from the ring's base):
//
//  0              64             128                            128 + capacity * stride
//  +--------------+--------------+----------+----------+-----+----------+
//  | tail         | head         | slot 0   | slot 1   | ... | slot N-1 |
//  +--------------+--------------+----------+----------+-----+----------+
//   tail: u64, written by the producer only (release), read by the consumer (acquire)
//   head: u64, written by the consumer only (release), read by the producer (acquire)
//   Both count messages since creation; slot i holds message number (i mod capacity).
//
//  Slot (stride = 8 + max_payload rounded up to 64 bytes):
//  0        8                               stride
//  +--------+-------------------------------+
//  | size   | payload (size bytes)          |   size and payload: written by the producer
//  +--------+-------------------------------+   before it publishes tail; read-only after.
//
// Invariant: head <= tail <= head + capacity. Slots [head, tail) are readable by the consumer
// and owned by it; all others are owned by the producer.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

#include "transport.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace exobus::bench::floor_ring {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

struct RingIndices {
  alignas(64) std::atomic<std::uint64_t> tail;
  alignas(64) std::atomic<std::uint64_t> head;
};
static_assert(sizeof(RingIndices) == 128);
static_assert(alignof(RingIndices) == 64);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "indices are shared between processes; they must not hide a lock");

struct RingGeometry {
  std::size_t capacity = 0;  // slots, a power of two
  std::size_t stride = 0;    // bytes per slot, a multiple of 64
  std::size_t max_payload = 0;

  std::size_t bytes() const { return sizeof(RingIndices) + capacity * stride; }

  // Enough slots to absorb scheduling hiccups (a few MiB, like the socket buffers the other
  // transports get), at least 16 so 64 KiB messages still pipeline, at most 4096.
  static RingGeometry for_payload(std::size_t max_payload) {
    RingGeometry g;
    g.max_payload = max_payload;
    g.stride = (sizeof(std::uint64_t) + max_payload + 63) / 64 * 64;
    constexpr std::size_t budget = 4u << 20;
    std::size_t cap = 4096;
    while (cap > 16 && cap * g.stride > budget) cap /= 2;
    g.capacity = cap;
    return g;
  }
};

class RingProducer final : public Sender {
 public:
  RingProducer(std::byte* base, const RingGeometry& g)
      : idx_(reinterpret_cast<RingIndices*>(base)),
        slots_(base + sizeof(RingIndices)),
        geo_(g),
        tail_(idx_->tail.load(std::memory_order_relaxed)),
        head_cache_(idx_->head.load(std::memory_order_acquire)) {}

  std::span<std::byte> acquire(std::size_t size) override {
    if (size > geo_.max_payload) throw TransportError("floor: payload larger than slot");
    // Full: refresh the cached head. The acquire pairs with the consumer's release store in
    // release(), so once we see the slot free the consumer has finished reading it.
    while (tail_ - head_cache_ == geo_.capacity) {
      head_cache_ = idx_->head.load(std::memory_order_acquire);
      if (tail_ - head_cache_ == geo_.capacity) cpu_relax();
    }
    return {slot(tail_) + sizeof(std::uint64_t), size};
  }

  void commit(std::size_t size) override {
    const std::uint64_t sz = size;
    std::memcpy(slot(tail_), &sz, sizeof sz);
    ++tail_;
    // Publishes size and payload: pairs with the consumer's acquire load of tail.
    idx_->tail.store(tail_, std::memory_order_release);
  }

 private:
  std::byte* slot(std::uint64_t n) { return slots_ + (n & (geo_.capacity - 1)) * geo_.stride; }

  RingIndices* idx_;
  std::byte* slots_;
  RingGeometry geo_;
  std::uint64_t tail_;        // our own index; the shared copy is only ever written by us
  std::uint64_t head_cache_;  // last head we saw; stale only in the safe direction (smaller)
};

class RingConsumer final : public Receiver {
 public:
  RingConsumer(std::byte* base, const RingGeometry& g)
      : idx_(reinterpret_cast<RingIndices*>(base)),
        slots_(base + sizeof(RingIndices)),
        geo_(g),
        head_(idx_->head.load(std::memory_order_relaxed)),
        tail_cache_(idx_->tail.load(std::memory_order_acquire)) {}

  std::span<const std::byte> receive() override {
    // Empty: refresh the cached tail. The acquire pairs with the producer's release store in
    // commit(), which makes the slot's size and payload visible.
    while (head_ == tail_cache_) {
      tail_cache_ = idx_->tail.load(std::memory_order_acquire);
      if (head_ == tail_cache_) cpu_relax();
    }
    const std::byte* s = slots_ + (head_ & (geo_.capacity - 1)) * geo_.stride;
    std::uint64_t size;
    std::memcpy(&size, s, sizeof size);
    // The peer is another process: never trust a length read from shared memory.
    if (size > geo_.max_payload) throw TransportError("floor: corrupt slot size");
    return {s + sizeof(std::uint64_t), static_cast<std::size_t>(size)};
  }

  void release() override {
    ++head_;
    // Hands the slot back: pairs with the producer's acquire load of head in acquire().
    idx_->head.store(head_, std::memory_order_release);
  }

 private:
  RingIndices* idx_;
  const std::byte* slots_;
  RingGeometry geo_;
  std::uint64_t head_;
  std::uint64_t tail_cache_;
};

}  // namespace exobus::bench::floor_ring
