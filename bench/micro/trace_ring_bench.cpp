// The trace ring (trace_ring.hpp): what a receiver pays per delivery while a tail is
// attached, one record written, alone and with a reader polling the ring on the other core.
#include <atomic>
#include <string>
#include <thread>

#include "bench_support.hpp"

namespace exobus::shm::bench {
namespace {

const std::string kPayload(64, 'x');

// A delivery as the receiver records it: the entry filled (names, 64 payload bytes) and
// written. The floor of the traced path, without the clock read.
void BM_TraceWrite(benchmark::State& state) {
  const std::unique_ptr<ScratchBus> bus = bench_bus();
  TraceWriter writer(bus->tenant(kReceiverType).trace_ring(0, TraceLoop::commands));
  for (auto _ : state) {
    TraceEntry entry;
    entry.taken_at_ns = state.iterations();
    entry.set_text("user.create", "create", kPayload);
    writer.write(entry);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TraceWrite);

// The same while a tail's reader on the other core copies every record it can: the
// writer never waits, so the difference is the records' cache lines moving to the reader.
void BM_TraceWriteWhileRead(benchmark::State& state) {
  const std::unique_ptr<ScratchBus> bus = bench_bus();
  TraceRingHeader* ring = bus->tenant(kReceiverType).trace_ring(0, TraceLoop::commands);
  TraceWriter writer(ring);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> read_count{0};
  std::thread reader_thread([&] {
    pin_to(kPeerCore);
    TraceReader reader(ring);
    std::uint64_t read = 0;
    while (!stop.load(std::memory_order_acquire)) {
      while (reader.next()) ++read;
    }
    read_count.store(read, std::memory_order_release);
  });
  for (auto _ : state) {
    TraceEntry entry;
    entry.taken_at_ns = state.iterations();
    entry.set_text("user.create", "create", kPayload);
    writer.write(entry);
  }
  stop.store(true, std::memory_order_release);
  reader_thread.join();
  state.SetItemsProcessed(state.iterations());
  state.counters["read"] = static_cast<double>(read_count.load(std::memory_order_acquire));
}
BENCHMARK(BM_TraceWriteWhileRead)->UseRealTime();

}  // namespace
}  // namespace exobus::shm::bench
