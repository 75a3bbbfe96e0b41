// A busy-poll round trip between two processes, as a request and its reply travel: the
// ping on link 0's type channel (sender -> receiver), the pong on link 1's reply channel
// of the pinging instance (receiver -> sender), 64-byte payloads both ways, each message
// taken and acknowledged. The time per iteration is the round trip: two full send + take +
// ack paths and two cache-line handoffs each way.
#include <cstring>
#include <vector>

#include "bench_support.hpp"

namespace exobus::shm::bench {
namespace {

constexpr std::size_t kPayloadBytes = 64;
constexpr std::uint32_t kPinger = 0;  // the sender type's instance that pings
constexpr std::uint32_t kPonger = 0;  // the receiver type's instance that answers

// Sends `payload` to one channel; false on any refusal (a round trip has one message in
// flight each way, so neither a full channel nor an exhausted pool can happen).
bool send_to(DataPlane& plane, LaneCursor& cursor, const Destination& to, std::span<const std::byte> payload) {
  const Allocation allocation = plane.allocate(*to.link, payload.size());
  if (allocation.status != PoolStatus::ok) return false;
  std::memcpy(allocation.buffer.data(), payload.data(), payload.size());
  const Part part{to, allocation.handle, static_cast<std::uint32_t>(payload.size())};
  if (plane.publish(cursor, std::span(&part, 1)).status == SendStatus::ok) return true;
  plane.abandon(*to.link, allocation.handle);
  return false;
}

// Spins until a message arrives on `channel`, acknowledging it; false if keep_waiting()
// says the peer is gone or the run is over (checked now and then, off the fast path), or
// the message is not what was sent.
template <class KeepWaiting>
bool await_one(DataPlane& plane, LaneCursor& cursor, Link& link, Channel& channel, KeepWaiting&& keep_waiting) {
  for (std::uint32_t polls = 1;; ++polls) {
    const TakeOutcome outcome = plane.take(cursor, link, channel, DataPlane::now_ms());
    if (outcome.status == TakeOutcomeStatus::ok) {
      const bool intact = outcome.delivery.payload.size() == kPayloadBytes;
      return plane.ack(outcome.delivery.lease) == LeaseStatus::ok && intact;
    }
    if (outcome.status != TakeOutcomeStatus::empty) return false;
    if (polls % (1u << 16) == 0 && !keep_waiting()) return false;
  }
}

void BM_RoundTripTwoProcesses(benchmark::State& state) {
  const std::unique_ptr<ScratchBus> bus = bench_bus();
  PeerProcess ponger(bus->memory(), kReceiverType, [](const BusMemory& memory, PeerControl& control) {
    DataPlane plane(memory, kReceiverType, kPonger);
    LaneCursor take_lane = take_cursor(plane);
    LaneCursor send_lane = send_cursor(plane);
    Link& pings = *memory.link(kCommandLink);
    const Destination reply_to{memory.link(kReplyLink), kPinger + 1};  // the pinger's reply channel
    const std::vector<std::byte> pong(kPayloadBytes, std::byte{2});
    auto running = [&] { return control.stop.load(std::memory_order_acquire) == 0; };
    while (await_one(plane, take_lane, pings, pings.type_channel(), running)) {
      if (!send_to(plane, send_lane, reply_to, pong)) ::_exit(4);
    }
    if (running()) ::_exit(5);  // a ping of the wrong size, or a failed take
  });
  DataPlane plane = bus->plane(kSenderType, kPinger);
  LaneCursor send_lane = send_cursor(plane);
  LaneCursor reply_lane = reply_cursor(plane);
  const Destination ping_to{&bus->link(kCommandLink), kTypeChannel};
  Link& pongs = bus->link(kReplyLink);
  Channel& inbox = *pongs.reply_channel(kPinger);
  const std::vector<std::byte> ping(kPayloadBytes, std::byte{1});
  const bool pinned = pin_to(kMainCore);
  bool failed = false;
  for (auto _ : state) {
    if (!send_to(plane, send_lane, ping_to, ping) ||
        !await_one(plane, reply_lane, pongs, inbox, [&] { return ponger.alive(); })) {
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
