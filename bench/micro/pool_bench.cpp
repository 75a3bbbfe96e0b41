// The chunk pool alone: allocate a chunk and give it back.
#include "bench_support.hpp"

namespace exobus::shm::bench {
namespace {

// Allocate then abandon (the owner's free of an unsent chunk): one scan step and two CAS
// on the chunk's state word. The cursor moves on each time, as a sender's does, so the
// loop walks the class instead of hitting one hot chunk.
void BM_PoolAllocateFree(benchmark::State& state) {
  ScratchSegment bus(bench_spec(), "bench");
  ChunkPool pool = bus.segment().pool();
  std::uint32_t cursors[kMaxSizeClasses]{};
  const auto size = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    const Allocation allocation = pool.allocate(size, 1, cursors);
    if (allocation.status != PoolStatus::ok) return fail(state, "allocation failed in an empty pool");
    pool.abandon(allocation.handle, 1);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PoolAllocateFree)->Arg(64)->Arg(4096);

}  // namespace
}  // namespace exobus::shm::bench
