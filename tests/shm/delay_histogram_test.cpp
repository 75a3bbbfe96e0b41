// The queueing-delay buckets: each delay lands in the first bucket whose bound exceeds it,
// and the bounds double from 512 ns.
#include "exobus/shm/delay_histogram.hpp"

#include <gtest/gtest.h>

#include <limits>

namespace exobus::shm {
namespace {

TEST(DelayHistogram, EveryDelayLandsInTheFirstBucketWhoseBoundExceedsIt) {
  for (std::size_t bucket = 0; bucket + 1 < kDelayBuckets; ++bucket) {
    const std::uint64_t bound = delay_bucket_bound_ns(bucket);
    EXPECT_EQ(delay_bucket(bound - 1), bucket) << "just below the bound of bucket " << bucket;
    EXPECT_EQ(delay_bucket(bound), bucket + 1) << "at the bound of bucket " << bucket;
  }
}

TEST(DelayHistogram, BoundsDoubleFrom512NanosecondsAndTheLastBucketTakesTheRest) {
  EXPECT_EQ(delay_bucket(0), 0u);
  EXPECT_EQ(delay_bucket_bound_ns(0), 512u);
  EXPECT_EQ(delay_bucket_bound_ns(kDelayBuckets - 2), std::uint64_t{1} << 31);  // 2.1 s
  EXPECT_EQ(delay_bucket(std::uint64_t{1} << 31), kDelayBuckets - 1);
  EXPECT_EQ(delay_bucket(std::numeric_limits<std::uint64_t>::max()), kDelayBuckets - 1);
}

}  // namespace
}  // namespace exobus::shm
