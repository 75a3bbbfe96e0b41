#include "exobus/shm/chunk_pool.hpp"

#include <algorithm>

#include "exobus/shm/fault_point.hpp"

namespace exobus::shm {

ChunkPool::ChunkPool(std::byte* chunks, std::atomic<std::uint32_t>* acks, std::span<const SizeClass> classes,
                     std::uint32_t link)
    : chunks_(chunks), acks_(acks), link_(link) {
  std::uint64_t offset = 0;
  for (const SizeClass& size_class : classes) {
    if (class_count_ == kMaxSizeClasses) break;
    classes_[class_count_++] = {size_class.chunk_size, size_class.chunk_count, chunk_count_, offset};
    chunk_count_ += size_class.chunk_count;
    offset += std::uint64_t{size_class.chunk_count} * (kChunkHeaderBytes + size_class.chunk_size);
  }
  seen_acks_ = std::make_unique<std::atomic<std::uint32_t>[]>(chunk_count_);
}

std::uint64_t ChunkPool::chunk_bytes(std::span<const SizeClass> classes) {
  std::uint64_t bytes = 0;
  for (const SizeClass& size_class : classes) {
    bytes += std::uint64_t{size_class.chunk_count} * (kChunkHeaderBytes + size_class.chunk_size);
  }
  return bytes;
}

std::uint64_t ChunkPool::ack_bytes(std::span<const SizeClass> classes) {
  std::uint64_t chunks = 0;
  for (const SizeClass& size_class : classes) chunks += size_class.chunk_count;
  return chunks * sizeof(std::atomic<std::uint32_t>);
}

std::size_t ChunkPool::largest_chunk() const { return class_count_ == 0 ? 0 : classes_[class_count_ - 1].chunk_size; }

bool ChunkPool::seen_acknowledged(std::uint32_t chunk, std::uint32_t generation, std::uint32_t& refreshed_group) {
  // Acquire pairs with the release of the thread that copied the word, after its acquire
  // of the word itself: the receiver's reads of the payload happen before our reuse.
  if (seen_acks_[chunk].load(std::memory_order_acquire) == generation) return true;
  constexpr std::uint32_t kAcksPerLine = 64 / sizeof(std::atomic<std::uint32_t>);
  const std::uint32_t group = chunk / kAcksPerLine;
  if (group == refreshed_group) return false;
  refreshed_group = group;
  const std::uint32_t end = std::min(chunk_count_, (group + 1) * kAcksPerLine);
  for (std::uint32_t c = group * kAcksPerLine; c < end; ++c) {
    seen_acks_[c].store(acks_[c].load(std::memory_order_acquire), std::memory_order_release);
  }
  return acknowledged(chunk, generation);
}

Allocation ChunkPool::allocate(std::size_t size, std::uint32_t owner) {
  bool fits_somewhere = false;
  std::uint32_t refreshed_group = ~std::uint32_t{0};
  // Classes ascend by size; an exhausted class spills into the next larger one.
  for (std::uint32_t c = 0; c < class_count_; ++c) {
    const Class& size_class = classes_[c];
    if (size_class.chunk_size < size) continue;
    fits_somewhere = true;
    std::uint32_t cursor = cursors_[c].load(std::memory_order_relaxed);
    for (std::uint32_t scanned = 0; scanned < size_class.chunk_count; ++scanned) {
      if (cursor >= size_class.chunk_count) cursor = 0;
      const std::uint32_t chunk = size_class.first_chunk + cursor++;
      ChunkHeader* chunk_header = header(chunk);
      std::uint64_t word = chunk_header->state.load(std::memory_order_relaxed);
      const ChunkState state = ChunkState::decode(word);
      // Free: never used, given back, or published and acknowledged. The acquire of the
      // ack word pairs with the receiver's release: its reads of the payload are done.
      const bool reusable = state.kind == ChunkKind::free ||
                            (state.kind == ChunkKind::published &&
                             seen_acknowledged(chunk, state.generation, refreshed_group));
      if (!reusable) continue;
      const std::uint32_t generation = next_generation(state.generation);
      const ChunkState claimed{owner, ChunkKind::allocated, generation};
      if (!chunk_header->state.compare_exchange_strong(word, claimed.encode(), std::memory_order_acquire,
                                                       std::memory_order_relaxed)) {
        continue;  // another allocator of this type won this chunk; keep scanning
      }
      cursors_[c].store(cursor, std::memory_order_relaxed);
      seen_acks_[chunk].store(0, std::memory_order_relaxed);
      // The new owner's writes to the payload come after this fence: a stale reader that
      // sees one of them also sees the new generation in intact().
      std::atomic_thread_fence(std::memory_order_release);
      // Death here: the chunk is ALLOCATED(owner); the daemon's recovery of owner frees it.
      fault_point(FaultPoint::allocate_claimed);
      return {PoolStatus::ok, MessageHandle(chunk, link_, generation), {payload_of(chunk_header), size_class.chunk_size}};
    }
  }
  return {fits_somewhere ? PoolStatus::exhausted : PoolStatus::too_large, {}, {}};
}

void ChunkPool::publish(MessageHandle handle, std::uint32_t length) {
  ChunkHeader* chunk_header = header(handle.chunk());
  chunk_header->length.store(length, std::memory_order_relaxed);
  // Release: payload and length are visible to whoever acquires PUBLISHED.
  chunk_header->state.store(ChunkState{0, ChunkKind::published, handle.generation()}.encode(),
                            std::memory_order_release);
}

void ChunkPool::abandon(MessageHandle handle, std::uint32_t owner) {
  ChunkHeader* chunk_header = header(handle.chunk());
  if (chunk_header == nullptr) return;
  std::uint64_t expected = ChunkState{owner, ChunkKind::allocated, handle.generation()}.encode();
  chunk_header->state.compare_exchange_strong(expected, ChunkState{0, ChunkKind::free, handle.generation()}.encode(),
                                              std::memory_order_release, std::memory_order_relaxed);
}

std::span<std::byte> ChunkPool::owned_buffer(MessageHandle handle) const {
  ChunkHeader* chunk_header = header(handle.chunk());
  if (chunk_header == nullptr) return {};
  return {payload_of(chunk_header), classes_[class_of(handle.chunk())].chunk_size};
}

ChunkView ChunkPool::read(MessageHandle handle) const {
  if (handle.link() != link_) return {false, {}};
  ChunkHeader* chunk_header = header(handle.chunk());
  if (chunk_header == nullptr) return {false, {}};
  // Acquire pairs with publish(): length and payload are complete.
  const ChunkState state = ChunkState::decode(chunk_header->state.load(std::memory_order_acquire));
  if (state.kind != ChunkKind::published || state.generation != handle.generation() ||
      acknowledged(handle.chunk(), handle.generation())) {
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
  // Acknowledged meanwhile is still intact: only an allocation rewrites the chunk, and it
  // changes the generation first.
  return state.kind == ChunkKind::published && state.generation == handle.generation();
}

bool ChunkPool::still_pending(MessageHandle handle) const {
  if (handle.link() != link_) return false;
  ChunkHeader* chunk_header = header(handle.chunk());
  if (chunk_header == nullptr) return false;
  const ChunkState state = ChunkState::decode(chunk_header->state.load(std::memory_order_acquire));
  return state.kind == ChunkKind::published && state.generation == handle.generation() &&
         !acknowledged(handle.chunk(), handle.generation());
}

void ChunkPool::acknowledge(MessageHandle handle) {
  if (handle.link() != link_ || handle.chunk() >= chunk_count_ || handle.generation() == 0) return;
  std::atomic<std::uint32_t>& ack = acks_[handle.chunk()];
  std::uint32_t current = ack.load(std::memory_order_relaxed);
  // Forward only: a late ack of an older generation (a lease lost to expiry, acknowledged
  // after the copy was handled, acknowledged and the chunk reused) must not undo the ack
  // of the newer message, or that chunk would never be free again.
  while (current == 0 || !generation_at_or_after(current, handle.generation())) {
    // Release: our reads of the payload happen before the sender can reuse the chunk.
    if (ack.compare_exchange_weak(current, handle.generation(), std::memory_order_release, std::memory_order_relaxed)) {
      return;
    }
  }
}

std::uint32_t ChunkPool::reclaim_allocations_of(std::uint32_t owner) {
  std::uint32_t reclaimed = 0;
  for (std::uint32_t chunk = 0; chunk < chunk_count_; ++chunk) {
    ChunkHeader* chunk_header = header(chunk);
    std::uint64_t word = chunk_header->state.load(std::memory_order_acquire);
    const ChunkState state = ChunkState::decode(word);
    if (state.kind != ChunkKind::allocated || state.owner != owner) continue;
    if (chunk_header->state.compare_exchange_strong(word, ChunkState{0, ChunkKind::free, state.generation}.encode(),
                                                    std::memory_order_release, std::memory_order_relaxed)) {
      ++reclaimed;
    }
  }
  return reclaimed;
}

void ChunkPool::unpublish(MessageHandle handle) {
  ChunkHeader* chunk_header = header(handle.chunk());
  if (chunk_header == nullptr) return;
  std::uint64_t word = chunk_header->state.load(std::memory_order_acquire);
  const ChunkState state = ChunkState::decode(word);
  if (state.kind == ChunkKind::free || state.generation != handle.generation()) return;
  chunk_header->state.compare_exchange_strong(word, ChunkState{0, ChunkKind::free, state.generation}.encode(),
                                              std::memory_order_release, std::memory_order_relaxed);
}

PoolAudit ChunkPool::audit_class(std::uint32_t c) const {
  PoolAudit result;
  const std::uint32_t end = classes_[c].first_chunk + classes_[c].chunk_count;
  for (std::uint32_t chunk = classes_[c].first_chunk; chunk < end; ++chunk) {
    const ChunkState state = ChunkState::decode(header(chunk)->state.load(std::memory_order_acquire));
    switch (state.kind) {
      case ChunkKind::free: ++result.free; break;
      case ChunkKind::allocated: ++result.allocated; break;
      case ChunkKind::published: ++(acknowledged(chunk, state.generation) ? result.free : result.published); break;
    }
    ++result.total;
  }
  return result;
}

PoolAudit ChunkPool::audit() const {
  PoolAudit result;
  for (std::uint32_t c = 0; c < class_count_; ++c) {
    const PoolAudit one = audit_class(c);
    result.free += one.free;
    result.allocated += one.allocated;
    result.published += one.published;
    result.total += one.total;
  }
  return result;
}

}  // namespace exobus::shm
