// A busy-poll round trip between two processes: ping on ring 0, pong on ring 1, 64-byte
// payloads both ways, each message taken and acknowledged. The time per iteration is the
// round trip: two full send + take + ack paths and two cache-line handoffs each way.
#include <vector>

#include "bench_support.hpp"

namespace exobus::shm::bench {
namespace {

constexpr std::uint16_t kPingRing = 0;
constexpr std::uint16_t kPongRing = 1;
constexpr std::size_t kPayloadBytes = 64;

// Spins until a message arrives on `ring`, acknowledging it; false if keep_waiting() says
// the peer is gone or the run is over (checked now and then, off the fast path).
template <class KeepWaiting>
bool await_one(DataPlane& plane, LaneCursor& lane, std::uint16_t ring, KeepWaiting&& keep_waiting) {
  for (std::uint32_t polls = 1;; ++polls) {
    const TakeOutcome outcome = plane.take(lane, ring, DataPlane::now_ms());
    if (outcome.status == TakeOutcomeStatus::ok) {
      const bool intact = outcome.delivery.payload.size() == kPayloadBytes;
      plane.ack(outcome.delivery.lease);
      return intact;
    }
    if (polls % (1u << 16) == 0 && !keep_waiting()) return false;
  }
}

void BM_RoundTripTwoProcesses(benchmark::State& state) {
  ScratchSegment bus(bench_spec(), "bench");
  DataPlane& plane = bus.plane();
  const std::vector<std::byte> ping(kPayloadBytes, std::byte{1});
  PeerProcess ponger(bus.segment(), [](DataPlane& peer, PeerControl& control) {
    LaneCursor lane{peer.lane_of(2, 0)};
    const std::vector<std::byte> pong(kPayloadBytes, std::byte{2});
    const std::uint16_t reply_to[] = {kPongRing};
    auto running = [&] { return control.stop.load(std::memory_order_acquire) == 0; };
    while (await_one(peer, lane, kPingRing, running)) {
      if (peer.send(lane, pong, reply_to).status != SendStatus::ok) ::_exit(4);
    }
    if (running()) ::_exit(5);  // a ping of the wrong size
  });
  LaneCursor lane{plane.lane_of(1, 0)};
  const std::uint16_t target[] = {kPingRing};
  const bool pinned = pin_to(kMainCore);
  bool failed = false;
  for (auto _ : state) {
    if (plane.send(lane, ping, target).status != SendStatus::ok ||
        !await_one(plane, lane, kPongRing, [&] { return ponger.alive(); })) {
      failed = true;
      break;
    }
  }
  unpin();
  if (!ponger.stop() || failed) return fail(state, "a ping or pong was lost or the peer process failed");
  state.counters["round_trips"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.SetLabel(pinning_label("ponger process", pinned));
}
BENCHMARK(BM_RoundTripTwoProcesses)->UseRealTime();

}  // namespace
}  // namespace exobus::shm::bench
