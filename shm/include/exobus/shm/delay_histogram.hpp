#pragma once
// The buckets of the queueing-delay and handler-time histograms an instance keeps in its
// InstanceRecord (tenant.hpp): bucket i counts durations below 2^(9 + i) ns (512 ns, 1 us, 2 us, ... 2.1 s), the
// last one every longer delay. Powers of two make the bucket one shift and a bit count, so
// recording costs a few instructions beside the clock read; Prometheus wants the bounds
// fixed, and these are.
#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace exobus::shm {

inline constexpr std::size_t kDelayBuckets = 24;
inline constexpr unsigned kFirstDelayBoundLog2 = 9;

constexpr std::size_t delay_bucket(std::uint64_t delay_ns) {
  return std::min<std::size_t>(std::bit_width(delay_ns >> kFirstDelayBoundLog2), kDelayBuckets - 1);
}

// The exclusive upper bound of bucket i in nanoseconds; the last bucket has none.
constexpr std::uint64_t delay_bucket_bound_ns(std::size_t bucket) {
  return std::uint64_t{1} << (kFirstDelayBoundLog2 + bucket);
}

}  // namespace exobus::shm
