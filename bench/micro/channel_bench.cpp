// The channel alone (channel.hpp, a link's type channel): claim, publish and take, in one
// thread and across two cores. What the ready ring measured for a queue between types
// before channels split each queue into a producer half and a consumer half: here the
// producer writes only the link's sender half and the consumer only its receiver half.
#include <thread>

#include "bench_support.hpp"

namespace exobus::shm::bench {
namespace {

const MessageHandle kHandle(1, kCommandLink, 1);

struct ChannelLanes {
  std::uint16_t producer, consumer;
};
ChannelLanes channel_lanes(ScratchBus& bus) {
  return {bus.tenant(kSenderType).lane_of(0, kFirstSendLane), bus.tenant(kReceiverType).lane_of(0, kCommandLane)};
}

// Claims and publishes one position; full: nothing claimed.
ClaimStatus push(Channel& channel, std::uint16_t lane) {
  const Claim claim = channel.claim(lane);
  if (claim.status == ClaimStatus::ok) channel.publish(claim.position, kHandle);
  return claim.status;
}

// Claim, publish and take in one thread: the protocol's floor, with both halves' lines hot
// in one core's cache.
void BM_ChannelPublishTake(benchmark::State& state) {
  const std::unique_ptr<ScratchBus> bus = bench_bus();
  Channel& channel = bus->link(kCommandLink).type_channel();
  const ChannelLanes lanes = channel_lanes(*bus);
  for (auto _ : state) {
    if (push(channel, lanes.producer) != ClaimStatus::ok) return fail(state, "claim failed on an empty channel");
    const Taken taken = channel.take(lanes.consumer, [](MessageHandle) {});
    if (taken.status != TakeStatus::ok) return fail(state, "take found nothing after a publish");
    benchmark::DoNotOptimize(taken);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ChannelPublishTake);

// A producer (this thread, core 0) and a consumer thread (core 1): each message moves the
// producer slot's line and the consumer slot's line between the cores.
void BM_ChannelProducerConsumerThreads(benchmark::State& state) {
  const std::unique_ptr<ScratchBus> bus = bench_bus();
  Channel& channel = bus->link(kCommandLink).type_channel();
  const ChannelLanes lanes = channel_lanes(*bus);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> taken_count{0};
  std::thread consumer([&] {
    pin_to(kPeerCore);
    std::uint64_t taken = 0;
    for (;;) {
      // As in the ring benchmark: stop read before the take that finds the channel empty.
      const bool stopping = stop.load(std::memory_order_acquire);
      if (channel.take(lanes.consumer, [](MessageHandle) {}).status == TakeStatus::ok) {
        ++taken;
      } else if (stopping) {
        break;
      }
    }
    taken_count.store(taken, std::memory_order_release);
  });
  const bool pinned = pin_to(kMainCore);
  bool corrupted = false;
  for (auto _ : state) {
    ClaimStatus status;
    while ((status = push(channel, lanes.producer)) == ClaimStatus::full) {
    }
    if (status != ClaimStatus::ok) {
      corrupted = true;
      break;
    }
  }
  stop.store(true, std::memory_order_release);
  consumer.join();
  unpin();
  if (corrupted) return fail(state, "a claim found the channel corrupt");
  if (taken_count.load(std::memory_order_acquire) != static_cast<std::uint64_t>(state.iterations())) {
    return fail(state, "the consumer did not take every published handle");
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(pinning_label("consumer thread", pinned));
}
BENCHMARK(BM_ChannelProducerConsumerThreads)->UseRealTime();

}  // namespace
}  // namespace exobus::shm::bench
