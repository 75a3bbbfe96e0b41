// Many threads through one ring, pool and lease table: nothing lost, nothing duplicated,
// each producer's order kept. Runs under TSan too (with smaller counts).
#include <gtest/gtest.h>

#include <cstdio>
#include <thread>

#include "stress_support.hpp"
#include "scratch_segment.hpp"

namespace exobus::shm {
namespace {

using namespace testing;

TEST(ReadyRingStress, EightProducersFourConsumersLoseAndDuplicateNothing) {
  constexpr std::uint32_t kProducers = 8, kConsumers = 4;
  const auto per_producer = static_cast<std::uint32_t>(10'000'000 / kProducers / kScaleDown);
  ScratchSegment bus(stress_spec(), "stress");
  DataPlane& plane = bus.plane();
  Ledger ledger(kProducers, per_producer);

  std::vector<std::thread> threads;
  for (std::uint32_t c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&, c] { consume(plane, plane.lane_of(1 + c, 0), kProducers, 0, ledger); });
  }
  for (std::uint32_t p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] { produce(plane, plane.lane_of(1 + p, 1), p, per_producer, 0, ledger); });
  }
  for (std::thread& thread : threads) thread.join();

  EXPECT_EQ(ledger.errors(), 0u);
  EXPECT_EQ(ledger.consumed(), ledger.total());
  std::printf("%llu messages delivered exactly once\n", static_cast<unsigned long long>(ledger.consumed()));
  EXPECT_EQ(ledger.missing(), 0u);
  EXPECT_EQ(ledger.duplicated(), 0u);
  const BusAudit audit = plane.audit();
  EXPECT_EQ(audit.pool.free, audit.pool.total);
  EXPECT_EQ(audit.leased + audit.queued + audit.in_flight_slots, 0u);
}

}  // namespace
}  // namespace exobus::shm
