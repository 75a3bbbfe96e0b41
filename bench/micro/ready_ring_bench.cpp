// The ready ring alone (a type's retry ring, tenant.hpp): one push and one take, in one
// thread and across two cores.
#include <thread>

#include "bench_support.hpp"

namespace exobus::shm::bench {
namespace {

const MessageHandle kHandle(1, kCommandLink, 1);

struct RingLanes {
  std::uint16_t producer, consumer;
};
// Two instances of the receiving type: one requeues, the other takes again.
RingLanes ring_lanes(const Tenant& tenant) {
  return {tenant.lane_of(0, kFirstSendLane), tenant.lane_of(1, kCommandLane)};
}

// Push then take in one thread: the uncontended cost of the two CAS-claimed slot handoffs
// (a lone thread always finds the slot it wants, so this is the floor of the protocol).
void BM_RingPushTake(benchmark::State& state) {
  const std::unique_ptr<ScratchBus> bus = bench_bus();
  ReadyRing ring = bus->tenant(kReceiverType).retry_ring();
  const RingLanes lanes = ring_lanes(bus->tenant(kReceiverType));
  for (auto _ : state) {
    if (ring.push(kHandle, 0, lanes.producer, [](std::uint64_t) {}) != PushStatus::ok) {
      return fail(state, "push failed on an empty ring");
    }
    const RingTaken taken = ring.take(lanes.consumer, [](MessageHandle, std::uint8_t) {});
    if (taken.status != RingTakeStatus::ok) return fail(state, "take found nothing after a push");
    benchmark::DoNotOptimize(taken);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RingPushTake);

// A producer (this thread, core 0) and a consumer thread (core 1): every slot's cache line
// moves between the cores twice per message. Items/s is the handoff rate.
void BM_RingProducerConsumerThreads(benchmark::State& state) {
  const std::unique_ptr<ScratchBus> bus = bench_bus();
  ReadyRing ring = bus->tenant(kReceiverType).retry_ring();
  const RingLanes lanes = ring_lanes(bus->tenant(kReceiverType));
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> taken_count{0};
  std::thread consumer([&] {
    pin_to(kPeerCore);
    std::uint64_t taken = 0;
    for (;;) {
      // Read stop before taking: a take that finds the ring empty after stop was seen saw
      // every push (they happen before the release store of stop), so the ring is drained.
      const bool stopping = stop.load(std::memory_order_acquire);
      if (ring.take(lanes.consumer, [](MessageHandle, std::uint8_t) {}).status == RingTakeStatus::ok) {
        ++taken;
      } else if (stopping) {
        break;
      }
    }
    taken_count.store(taken, std::memory_order_release);
  });
  const bool pinned = pin_to(kMainCore);
  for (auto _ : state) {
    while (ring.push(kHandle, 0, lanes.producer, [](std::uint64_t) {}) != PushStatus::ok) {
    }
  }
  stop.store(true, std::memory_order_release);
  consumer.join();
  unpin();
  if (taken_count.load(std::memory_order_acquire) != static_cast<std::uint64_t>(state.iterations())) {
    return fail(state, "the consumer did not take every pushed handle");
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(pinning_label("consumer thread", pinned));
}
BENCHMARK(BM_RingProducerConsumerThreads)->UseRealTime();

}  // namespace
}  // namespace exobus::shm::bench
