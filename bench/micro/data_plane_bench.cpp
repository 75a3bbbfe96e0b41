// The whole data path: send (allocate, copy, publish, push), take (lease, claim, read) and
// ack (clear the target bit, free the chunk, free the lease); one thread, two threads, two
// processes. Payloads are state.range(0) bytes.
#include <cstring>
#include <thread>
#include <vector>

#include "bench_support.hpp"

namespace exobus::shm::bench {
namespace {

constexpr std::uint16_t kRing = 0;
const std::uint16_t kTarget[] = {kRing};

std::vector<std::byte> payload_of(benchmark::State& state) {
  return std::vector<std::byte>(static_cast<std::size_t>(state.range(0)), std::byte{0x5a});
}

// Sends until the ring or the pool has room: back-pressure, not an error, when a receiver
// on the other core lags. False if the send failed for another reason, or if
// receiver_alive() says nobody will ever make room (checked now and then, off the fast path).
template <class Alive>
bool send_with_backpressure(DataPlane& plane, LaneCursor& lane, std::span<const std::byte> payload,
                            Alive&& receiver_alive) {
  for (std::uint32_t refused = 1;; ++refused) {
    const SendStatus status = plane.send(lane, payload, kTarget).status;
    if (status == SendStatus::ok) return true;
    if (status != SendStatus::queue_full && status != SendStatus::pool_exhausted) return false;
    if (refused % (1u << 20) == 0 && !receiver_alive()) return false;
  }
}

// Takes and acknowledges whatever is there; returns how many messages it handled.
std::uint64_t take_and_ack(DataPlane& plane, LaneCursor& lane) {
  const TakeOutcome outcome = plane.take(lane, kRing, DataPlane::now_ms());
  if (outcome.status != TakeOutcomeStatus::ok) return 0;
  benchmark::DoNotOptimize(outcome.delivery.payload.data());
  plane.ack(outcome.delivery.lease);
  return 1;
}

// One thread does all three: the instruction cost of the protocol without any cache-line
// transfer between cores.
void BM_SendTakeAck(benchmark::State& state) {
  ScratchSegment bus(bench_spec(), "bench");
  DataPlane& plane = bus.plane();
  LaneCursor sender{plane.lane_of(1, 0)};
  LaneCursor receiver{plane.lane_of(2, 0)};
  const std::vector<std::byte> payload = payload_of(state);
  for (auto _ : state) {
    if (plane.send(sender, payload, kTarget).status != SendStatus::ok) return fail(state, "send failed");
    if (take_and_ack(plane, receiver) != 1) return fail(state, "take found nothing");
  }
  state.counters["msgs"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SendTakeAck)->Arg(64)->Arg(1024);

// Sender (this thread, core 0) and one receiver thread (core 1) busy-polling take + ack.
void BM_SendTakeAckTwoThreads(benchmark::State& state) {
  ScratchSegment bus(bench_spec(), "bench");
  DataPlane& plane = bus.plane();
  LaneCursor sender{plane.lane_of(1, 0)};
  const std::vector<std::byte> payload = payload_of(state);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> received{0};
  // The receiver counts privately and publishes its total once: a shared counter bumped per
  // message would add a cache-line transfer per message and distort the figure.
  std::thread receiver([&] {
    pin_to(kPeerCore);
    LaneCursor lane{plane.lane_of(2, 0)};
    std::uint64_t handled = 0;
    for (;;) {
      const std::uint64_t got = take_and_ack(plane, lane);
      handled += got;
      if (got == 0 && stop.load(std::memory_order_acquire) && plane.ring(kRing).looks_empty()) break;
    }
    received.store(handled, std::memory_order_release);
  });
  const bool pinned = pin_to(kMainCore);
  for (auto _ : state) {
    if (!send_with_backpressure(plane, sender, payload, [] { return true; })) {
      stop.store(true, std::memory_order_release);
      receiver.join();
      unpin();
      return fail(state, "send failed");
    }
  }
  stop.store(true, std::memory_order_release);
  receiver.join();
  unpin();
  if (received.load(std::memory_order_acquire) != static_cast<std::uint64_t>(state.iterations())) {
    return fail(state, "the receiver thread did not get every message");
  }
  state.counters["msgs"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.SetLabel(pinning_label("receiver thread", pinned));
}
BENCHMARK(BM_SendTakeAckTwoThreads)->Arg(64)->UseRealTime();

// Sender (this process, core 0) and a forked receiver process (core 1) that maps the
// segment itself and busy-polls take + ack: the production shape of one-way traffic.
void BM_SendTakeAckTwoProcesses(benchmark::State& state) {
  ScratchSegment bus(bench_spec(), "bench");
  DataPlane& plane = bus.plane();
  LaneCursor sender{plane.lane_of(1, 0)};
  const std::vector<std::byte> payload = payload_of(state);
  PeerProcess receiver(bus.segment(), [](DataPlane& peer, PeerControl& control) {
    LaneCursor lane{peer.lane_of(2, 0)};
    std::uint64_t handled = 0;
    for (;;) {
      const std::uint64_t got = take_and_ack(peer, lane);
      handled += got;
      if (got == 0 && control.stop.load(std::memory_order_acquire) && peer.ring(kRing).looks_empty()) break;
    }
    control.handled.store(handled, std::memory_order_release);
  });
  const bool pinned = pin_to(kMainCore);
  std::uint64_t sent = 0;
  for (auto _ : state) {
    if (!send_with_backpressure(plane, sender, payload, [&] { return receiver.alive(); })) break;
    ++sent;
  }
  unpin();
  if (!receiver.stop()) return fail(state, "the receiver process failed");
  if (sent != static_cast<std::uint64_t>(state.iterations())) return fail(state, "send failed");
  if (receiver.control().handled.load(std::memory_order_acquire) != sent) {
    return fail(state, "the receiver process did not get every message");
  }
  state.counters["msgs"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.SetLabel(pinning_label("receiver process", pinned));
}
BENCHMARK(BM_SendTakeAckTwoProcesses)->Arg(64)->Arg(1024)->UseRealTime();

}  // namespace
}  // namespace exobus::shm::bench
