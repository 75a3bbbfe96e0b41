// The chunk pool alone: allocate a chunk and give it back.
#include "bench_support.hpp"

namespace exobus::shm::bench {
namespace {

// Allocate then abandon (the owner's free of an unsent chunk): one scan step and two CAS
// on the chunk's state word. The pool's scan hint moves on each time, as a sender's does,
// so the loop walks the class instead of hitting one hot chunk.
void BM_PoolAllocateFree(benchmark::State& state) {
  const std::unique_ptr<ScratchBus> bus = bench_bus();
  ChunkPool& pool = bus->link(kCommandLink).pool();
  const auto size = static_cast<std::size_t>(state.range(0));
  constexpr std::uint32_t kOwner = 1;
  for (auto _ : state) {
    const Allocation allocation = pool.allocate(size, kOwner);
    if (allocation.status != PoolStatus::ok) return fail(state, "allocation failed in an empty pool");
    pool.abandon(allocation.handle, kOwner);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PoolAllocateFree)->Arg(64)->Arg(4096);

}  // namespace
}  // namespace exobus::shm::bench
