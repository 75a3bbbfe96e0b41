#include "exobus/shm/tenant.hpp"

#include <bit>

namespace exobus::shm {

namespace {

constexpr std::uint64_t align_to_line(std::uint64_t bytes) { return (bytes + 63) / 64 * 64; }

bool valid_ring_capacity(std::uint32_t capacity) {
  return std::has_single_bit(capacity) && capacity >= 2 && capacity <= (1u << 24);
}

}  // namespace

Result<TenantLayout> compute_tenant_layout(const TenantShape& shape) {
  const auto invalid = [](std::string message) { return Error{ErrorCode::config_error, std::move(message)}; };
  if (shape.instances == 0 || shape.lanes_per_instance == 0 ||
      (std::uint64_t{shape.instances} + 1) * shape.lanes_per_instance > 0xffff) {
    return invalid("a service type's instances x lanes must stay below 65535");
  }
  if (shape.leases_per_lane == 0 || shape.leases_per_lane > (1u << 16)) {
    return invalid("leases per lane must be 1..65536");
  }
  if (!valid_ring_capacity(shape.retry_capacity) || !valid_ring_capacity(shape.dead_letter_capacity)) {
    return invalid("retry and dead-letter capacities must be powers of two from 2 to 16777216");
  }
  if (shape.delivery_limit == 0 || shape.delivery_limit > 255) return invalid("delivery limit must be 1..255");

  TenantLayout layout;
  layout.lane_count = (shape.instances + 1) * shape.lanes_per_instance;
  std::uint64_t offset = align_to_line(std::uint64_t{shape.instances} * sizeof(InstanceRecord));
  layout.lanes = offset;
  layout.lane_stride = align_to_line(sizeof(SendRecord) + std::uint64_t{shape.leases_per_lane} * sizeof(LeaseEntry));
  offset += layout.lane_stride * layout.lane_count;
  layout.retry_ring = offset;
  offset += align_to_line(sizeof(RingHeader) + std::uint64_t{shape.retry_capacity} * sizeof(RingSlot));
  layout.dead_letters = offset;
  offset += align_to_line(sizeof(RingHeader) + std::uint64_t{shape.dead_letter_capacity} * sizeof(RingSlot));
  layout.trace = offset;
  offset += std::uint64_t{shape.instances} * kTraceRingsPerInstance * kTraceRingBytes;
  layout.bytes = offset;
  return layout;
}

Tenant::Tenant(std::uint16_t type, const TenantShape& shape, const TenantLayout& layout, std::byte* base)
    : type_(type), shape_(shape), layout_(layout), base_(base) {}

}  // namespace exobus::shm
