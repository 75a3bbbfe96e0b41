#include "exobus/shm/chunk_pool.hpp"

#include <algorithm>

#include "exobus/shm/fault_point.hpp"

namespace exobus::shm {

ChunkPool::ChunkPool(std::byte* segment_base, std::span<const SizeClassLayout> classes)
    : base_(segment_base), class_count_(static_cast<std::uint32_t>(classes.size())) {
  std::copy(classes.begin(), classes.end(), classes_);
  for (const auto& size_class : classes) chunk_count_ += size_class.chunk_count;
}

std::uint32_t ChunkPool::class_of(std::uint32_t chunk) const {
  for (std::uint32_t c = 0; c < class_count_; ++c) {
    if (chunk - classes_[c].first_chunk < classes_[c].chunk_count) return c;
  }
  return kMaxSizeClasses;
}

ChunkHeader* ChunkPool::header(std::uint32_t chunk) const {
  const std::uint32_t c = class_of(chunk);
  if (c == kMaxSizeClasses) return nullptr;
  const SizeClassLayout& size_class = classes_[c];
  const std::uint64_t stride = kChunkHeaderBytes + size_class.chunk_size;
  return reinterpret_cast<ChunkHeader*>(base_ + size_class.offset +
                                        (chunk - size_class.first_chunk) * stride);
}

std::size_t ChunkPool::largest_chunk() const {
  return class_count_ == 0 ? 0 : classes_[class_count_ - 1].chunk_size;
}

Allocation ChunkPool::allocate(std::size_t size, std::uint16_t owner,
                               std::span<std::uint32_t, kMaxSizeClasses> cursors) {
  bool fits_somewhere = false;
  // Classes ascend by size; an exhausted class spills into the next larger one.
  for (std::uint32_t c = 0; c < class_count_; ++c) {
    const SizeClassLayout& size_class = classes_[c];
    if (size_class.chunk_size < size) continue;
    fits_somewhere = true;
    std::uint32_t& cursor = cursors[c];
    for (std::uint32_t scanned = 0; scanned < size_class.chunk_count; ++scanned) {
      if (cursor >= size_class.chunk_count) cursor = 0;
      const std::uint32_t chunk = size_class.first_chunk + cursor++;
      ChunkHeader* chunk_header = header(chunk);
      std::uint64_t word = chunk_header->state.load(std::memory_order_relaxed);
      const ChunkState state = ChunkState::decode(word);
      if (state.kind != ChunkKind::free) continue;
      const std::uint32_t generation = next_generation(state.generation);
      const ChunkState claimed{owner, ChunkKind::allocated, generation};
      // Acquire pairs with the release of the CAS that freed the chunk, so the previous
      // readers of the payload are done with it before we overwrite it.
      if (!chunk_header->state.compare_exchange_strong(word, claimed.encode(),
                                                       std::memory_order_acquire,
                                                       std::memory_order_relaxed)) {
        continue;  // another allocator won this chunk; keep scanning
      }
      // The new owner's writes to the payload come after this fence: a stale reader that
      // sees one of them also sees the new generation in intact().
      std::atomic_thread_fence(std::memory_order_release);
      // Death here: the chunk is ALLOCATED(owner); recovery of owner frees it.
      fault_point(FaultPoint::allocate_claimed);
      return {PoolStatus::ok, MessageHandle(chunk, 0, generation),
              {payload_of(chunk_header), size_class.chunk_size}};
    }
  }
  return {fits_somewhere ? PoolStatus::exhausted : PoolStatus::too_large, {}, {}};
}

void ChunkPool::publish(MessageHandle handle, std::uint32_t length, std::uint32_t target_mask) {
  ChunkHeader* chunk_header = header(handle.chunk());
  chunk_header->length.store(length, std::memory_order_relaxed);
  // Release: payload and length are visible to whoever acquires PUBLISHED.
  chunk_header->state.store(
      ChunkState{target_mask, ChunkKind::published, handle.generation()}.encode(),
      std::memory_order_release);
}

void ChunkPool::abandon(MessageHandle handle, std::uint16_t owner) {
  ChunkHeader* chunk_header = header(handle.chunk());
  if (chunk_header == nullptr) return;
  std::uint64_t expected = ChunkState{owner, ChunkKind::allocated, handle.generation()}.encode();
  chunk_header->state.compare_exchange_strong(
      expected, ChunkState{0, ChunkKind::free, handle.generation()}.encode(),
      std::memory_order_release, std::memory_order_relaxed);
}

ChunkView ChunkPool::read(MessageHandle handle) const {
  ChunkHeader* chunk_header = header(handle.chunk());
  if (chunk_header == nullptr || handle.target() >= kMaxTargets) return {false, {}};
  // Acquire pairs with publish(): length and payload are complete.
  const ChunkState state =
      ChunkState::decode(chunk_header->state.load(std::memory_order_acquire));
  if (state.kind != ChunkKind::published || state.generation != handle.generation() ||
      (state.data & (1u << handle.target())) == 0) {
    return {false, {}};
  }
  const std::uint32_t capacity = classes_[class_of(handle.chunk())].chunk_size;
  const std::uint32_t length = chunk_header->length.load(std::memory_order_relaxed);
  if (length > capacity) return {false, {}};
  return {true, {payload_of(chunk_header), length}};
}

bool ChunkPool::intact(MessageHandle handle) const {
  ChunkHeader* chunk_header = header(handle.chunk());
  if (chunk_header == nullptr) return false;
  std::atomic_thread_fence(std::memory_order_acquire);
  const ChunkState state = ChunkState::decode(chunk_header->state.load(std::memory_order_relaxed));
  // Acknowledged by every target meanwhile (FREE, same generation) is still intact: only an
  // allocation rewrites the chunk, and it changes the generation first.
  return state.generation == handle.generation();
}

bool ChunkPool::still_pending(MessageHandle handle) const {
  ChunkHeader* chunk_header = header(handle.chunk());
  if (chunk_header == nullptr || handle.target() >= kMaxTargets) return false;
  const ChunkState state =
      ChunkState::decode(chunk_header->state.load(std::memory_order_acquire));
  return state.kind == ChunkKind::published && state.generation == handle.generation() &&
         (state.data & (1u << handle.target())) != 0;
}

TargetRelease ChunkPool::release_target(MessageHandle handle) {
  ChunkHeader* chunk_header = header(handle.chunk());
  if (chunk_header == nullptr || handle.target() >= kMaxTargets) return TargetRelease::stale;
  const std::uint32_t bit = 1u << handle.target();
  std::uint64_t word = chunk_header->state.load(std::memory_order_relaxed);
  for (;;) {
    const ChunkState state = ChunkState::decode(word);
    // Case analysis of the loaded state:
    // - other generation or not PUBLISHED: the chunk was freed (and maybe reused) since
    //   this handle was made, so this target was already released: stale, touch nothing.
    // - our bit already clear: a duplicate release (late ack, requeued copy): stale.
    // - otherwise clear our bit; the last bit turns the chunk FREE in the same CAS.
    if (state.kind != ChunkKind::published || state.generation != handle.generation() ||
        (state.data & bit) == 0) {
      return TargetRelease::stale;
    }
    const std::uint32_t remaining = state.data & ~bit;
    const ChunkState next = remaining == 0
                                ? ChunkState{0, ChunkKind::free, state.generation}
                                : ChunkState{remaining, ChunkKind::published, state.generation};
    // Release: our reads of the payload happen before the chunk can be reallocated.
    if (chunk_header->state.compare_exchange_weak(word, next.encode(), std::memory_order_acq_rel,
                                                  std::memory_order_relaxed)) {
      return remaining == 0 ? TargetRelease::freed : TargetRelease::still_pending;
    }
  }
}

std::uint32_t ChunkPool::reclaim_allocations_of(std::uint16_t owner) {
  std::uint32_t reclaimed = 0;
  for (std::uint32_t chunk = 0; chunk < chunk_count_; ++chunk) {
    ChunkHeader* chunk_header = header(chunk);
    std::uint64_t word = chunk_header->state.load(std::memory_order_acquire);
    const ChunkState state = ChunkState::decode(word);
    if (state.kind != ChunkKind::allocated || state.data != owner) continue;
    if (chunk_header->state.compare_exchange_strong(
            word, ChunkState{0, ChunkKind::free, state.generation}.encode(),
            std::memory_order_release, std::memory_order_relaxed)) {
      ++reclaimed;
    }
  }
  return reclaimed;
}

PoolAudit ChunkPool::audit() const {
  PoolAudit result;
  for (std::uint32_t chunk = 0; chunk < chunk_count_; ++chunk) {
    const ChunkState state =
        ChunkState::decode(header(chunk)->state.load(std::memory_order_acquire));
    switch (state.kind) {
      case ChunkKind::free: ++result.free; break;
      case ChunkKind::allocated: ++result.allocated; break;
      case ChunkKind::published: ++result.published; break;
    }
    ++result.total;
  }
  return result;
}

}  // namespace exobus::shm
