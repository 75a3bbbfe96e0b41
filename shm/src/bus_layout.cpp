#include "exobus/shm/bus_layout.hpp"

#include <bit>

namespace exobus::shm {

namespace {

constexpr std::uint64_t kCacheLine = 64;
constexpr std::uint64_t align_up(std::uint64_t value) {
  return (value + kCacheLine - 1) / kCacheLine * kCacheLine;
}

}  // namespace

Result<Layout> compute_layout(const LayoutSpec& spec) {
  Layout layout;
  auto fail = [](std::string message) { return Error{ErrorCode::config_error, std::move(message)}; };
  if (spec.size_classes.empty() || spec.size_classes.size() > kMaxSizeClasses) {
    return fail("a bus needs 1 to 8 chunk size classes");
  }
  if (spec.rings.empty() || spec.rings.size() > kMaxRings) {
    return fail("a bus needs 1 to 4096 rings");
  }
  if (spec.max_instances == 0 || spec.lanes_per_instance == 0 || spec.leases_per_lane == 0 ||
      std::uint64_t{spec.max_instances} * spec.lanes_per_instance > kMaxLanes ||
      spec.leases_per_lane > (1u << 16)) {
    return fail("instances x lanes must be 1..65535 and leases per lane 1..65536");
  }

  layout.max_instances = spec.max_instances;
  layout.lanes_per_instance = spec.lanes_per_instance;
  layout.leases_per_lane = spec.leases_per_lane;
  std::uint64_t offset = align_up(sizeof(SegmentHeader));
  layout.rings_offset = offset;
  offset = align_up(offset + spec.rings.size() * sizeof(RingDescriptor));
  layout.instances_offset = offset;
  offset += std::uint64_t{spec.max_instances} * sizeof(InstanceSlot);
  layout.lanes_offset = offset;
  layout.lane_stride = align_up(sizeof(LaneHeader) + spec.leases_per_lane * sizeof(LeaseEntry));
  offset += std::uint64_t{spec.max_instances} * spec.lanes_per_instance * layout.lane_stride;

  for (const RingSpec& ring : spec.rings) {
    if (!std::has_single_bit(ring.capacity) || ring.capacity < 2 || ring.capacity > (1u << 24)) {
      return fail("ring capacity must be a power of two from 2 to 16777216");
    }
    if (ring.dead_letter_ring != kNoRing && ring.dead_letter_ring >= spec.rings.size()) {
      return fail("dead-letter ring index out of range");
    }
    if (ring.delivery_limit == 0) return fail("delivery limit must be at least 1");
    layout.rings.push_back({offset, ring.capacity, ring.lease_ms, ring.delivery_limit, 0,
                            ring.dead_letter_ring, 0});
    offset = align_up(offset + sizeof(RingHeader) + std::uint64_t{ring.capacity} * sizeof(RingSlot));
  }

  std::uint32_t first_chunk = 0;
  std::uint32_t previous_size = 0;
  for (const SizeClassLayout& size_class : spec.size_classes) {
    if (!std::has_single_bit(size_class.chunk_size) || size_class.chunk_size < kMinChunkSize ||
        size_class.chunk_size > kMaxChunkSize || size_class.chunk_size <= previous_size) {
      return fail("chunk sizes must be powers of two from 256 B to 1 MiB, ascending");
    }
    if (size_class.chunk_count == 0 || size_class.chunk_count > (1u << 24)) {
      return fail("a size class needs 1 to 16777216 chunks");
    }
    previous_size = size_class.chunk_size;
    layout.size_classes.push_back({size_class.chunk_size, size_class.chunk_count, first_chunk, 0, offset});
    first_chunk += size_class.chunk_count;
    offset += std::uint64_t{size_class.chunk_count} * (kChunkHeaderBytes + size_class.chunk_size);
  }
  layout.total_size = offset;
  return layout;
}

}  // namespace exobus::shm
