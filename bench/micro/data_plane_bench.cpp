// The whole data path: send (allocate a chunk in the link's pool, copy, publish on the
// link's type channel with a send record), take (lease, claim, read) and ack (store the
// ack word, free the lease); one thread, two threads, two processes. Payloads are
// state.range(0) bytes.
#include <cstring>
#include <optional>
#include <thread>
#include <vector>

#include "bench_support.hpp"

namespace exobus::shm::bench {
namespace {

std::vector<std::byte> payload_of(benchmark::State& state) {
  return std::vector<std::byte>(static_cast<std::size_t>(state.range(0)), std::byte{0x5a});
}

enum class Sent : std::uint8_t { ok, backpressure, failed };

// One send as the client library makes it: a chunk in the link's pool, the payload copied
// in, published on the link's type channel. A full channel or an exhausted pool is
// back-pressure (the chunk goes back), anything else a failure.
Sent send_one(DataPlane& plane, LaneCursor& cursor, Link& link, std::span<const std::byte> payload) {
  const Allocation allocation = plane.allocate(link, payload.size());
  if (allocation.status == PoolStatus::exhausted) return Sent::backpressure;
  if (allocation.status != PoolStatus::ok) return Sent::failed;
  std::memcpy(allocation.buffer.data(), payload.data(), payload.size());
  const Part part{{&link, kTypeChannel}, allocation.handle, static_cast<std::uint32_t>(payload.size())};
  const SendResult result = plane.publish(cursor, std::span(&part, 1));
  if (result.status == SendStatus::ok) return Sent::ok;
  plane.abandon(link, allocation.handle);
  return result.status == SendStatus::queue_full ? Sent::backpressure : Sent::failed;
}

// Sends until the channel or the pool has room: back-pressure, not an error, when a
// receiver on the other core lags. False if the send failed for another reason, or if
// receiver_alive() says nobody will ever make room (checked now and then, off the fast path).
template <class Alive>
bool send_with_backpressure(DataPlane& plane, LaneCursor& cursor, Link& link, std::span<const std::byte> payload,
                            Alive&& receiver_alive) {
  for (std::uint32_t refused = 1;; ++refused) {
    const Sent sent = send_one(plane, cursor, link, payload);
    if (sent == Sent::ok) return true;
    if (sent == Sent::failed) return false;
    if (refused % (1u << 20) == 0 && !receiver_alive()) return false;
  }
}

// Takes and acknowledges whatever is there: 1 if it handled a message, 0 if the channel was
// empty, -1 if the take failed (a corrupt channel, no free lease: a benchmark bug).
int take_and_ack(DataPlane& plane, LaneCursor& cursor, Link& link) {
  const TakeOutcome outcome = plane.take(cursor, link, link.type_channel(), DataPlane::now_ms());
  if (outcome.status == TakeOutcomeStatus::empty) return 0;
  if (outcome.status != TakeOutcomeStatus::ok) return -1;
  benchmark::DoNotOptimize(outcome.delivery.payload.data());
  return plane.ack(outcome.delivery.lease) == LeaseStatus::ok ? 1 : -1;
}

// Takes and acknowledges until `stop` and the channel is drained; returns how many messages
// it handled, or nothing if a take or an ack failed.
template <class Stop>
std::optional<std::uint64_t> receive_until(DataPlane& plane, Link& link, Stop&& stop) {
  LaneCursor cursor = take_cursor(plane);
  std::uint64_t handled = 0;
  for (;;) {
    const int got = take_and_ack(plane, cursor, link);
    if (got < 0) return std::nullopt;
    handled += static_cast<std::uint64_t>(got);
    // stop is read before the emptiness check: every send happened before stop was set.
    if (got == 0 && stop() && link.type_channel().looks_empty()) return handled;
  }
}

// One thread does all three: the instruction cost of the protocol without any cache-line
// transfer between cores.
void BM_SendTakeAck(benchmark::State& state) {
  const std::unique_ptr<ScratchBus> bus = bench_bus();
  Link& link = bus->link(kCommandLink);
  DataPlane sender = bus->plane(kSenderType, 0);
  DataPlane receiver = bus->plane(kReceiverType, 0);
  LaneCursor send_lane = send_cursor(sender);
  LaneCursor take_lane = take_cursor(receiver);
  const std::vector<std::byte> payload = payload_of(state);
  for (auto _ : state) {
    if (send_one(sender, send_lane, link, payload) != Sent::ok) return fail(state, "send failed");
    if (take_and_ack(receiver, take_lane, link) != 1) return fail(state, "take found nothing");
  }
  state.counters["msgs"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SendTakeAck)->Arg(64)->Arg(1024);

// Sender (this thread, core 0) and one receiver thread (core 1) busy-polling take + ack.
void BM_SendTakeAckTwoThreads(benchmark::State& state) {
  const std::unique_ptr<ScratchBus> bus = bench_bus();
  Link& link = bus->link(kCommandLink);
  DataPlane sender = bus->plane(kSenderType, 0);
  LaneCursor send_lane = send_cursor(sender);
  const std::vector<std::byte> payload = payload_of(state);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> received{0};
  std::atomic<bool> receiver_failed{false};
  // The receiver counts privately and publishes its total once: a shared counter bumped per
  // message would add a cache-line transfer per message and distort the figure.
  std::thread receiver([&] {
    pin_to(kPeerCore);
    DataPlane plane = bus->plane(kReceiverType, 0);
    const std::optional<std::uint64_t> handled =
        receive_until(plane, link, [&] { return stop.load(std::memory_order_acquire); });
    if (!handled) receiver_failed.store(true, std::memory_order_release);
    received.store(handled.value_or(0), std::memory_order_release);
  });
  const bool pinned = pin_to(kMainCore);
  bool sent_all = true;
  for (auto _ : state) {
    if (!send_with_backpressure(sender, send_lane, link, payload,
                                [&] { return !receiver_failed.load(std::memory_order_acquire); })) {
      sent_all = false;
      break;
    }
  }
  stop.store(true, std::memory_order_release);
  receiver.join();
  unpin();
  if (!sent_all) return fail(state, "send failed");
  if (receiver_failed.load(std::memory_order_acquire)) return fail(state, "the receiver thread's take or ack failed");
  if (received.load(std::memory_order_acquire) != static_cast<std::uint64_t>(state.iterations())) {
    return fail(state, "the receiver thread did not get every message");
  }
  state.counters["msgs"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.SetLabel(pinning_label("receiver thread", pinned));
}
BENCHMARK(BM_SendTakeAckTwoThreads)->Arg(64)->UseRealTime();

// Sender (this process, core 0) and a forked receiver process (core 1) that maps its own
// grants, as a service of the receiving type would (the sender half read-only), and
// busy-polls take + ack: the production shape of one-way traffic.
void BM_SendTakeAckTwoProcesses(benchmark::State& state) {
  const std::unique_ptr<ScratchBus> bus = bench_bus();
  Link& link = bus->link(kCommandLink);
  DataPlane sender = bus->plane(kSenderType, 0);
  LaneCursor send_lane = send_cursor(sender);
  const std::vector<std::byte> payload = payload_of(state);
  PeerProcess receiver(bus->memory(), kReceiverType, [](const BusMemory& memory, PeerControl& control) {
    DataPlane plane(memory, kReceiverType, 0);
    const std::optional<std::uint64_t> handled = receive_until(
        plane, *memory.link(kCommandLink), [&] { return control.stop.load(std::memory_order_acquire) != 0; });
    if (!handled) ::_exit(4);
    control.handled.store(*handled, std::memory_order_release);
  });
  const bool pinned = pin_to(kMainCore);
  std::uint64_t sent = 0;
  for (auto _ : state) {
    if (!send_with_backpressure(sender, send_lane, link, payload, [&] { return receiver.alive(); })) break;
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
