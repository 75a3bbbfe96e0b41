// Four producer processes and four consumer processes on one ring, each mapping the
// segment itself: nothing lost, nothing duplicated, each producer's order kept.
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <cstdio>

#include "stress_support.hpp"
#include "scratch_segment.hpp"

namespace exobus::shm {
namespace {

using namespace testing;

// Forks `body` as a child process that maps the segment on its own, from its descriptor,
// as a service does with the one its registration passed it.
template <class Body>
pid_t spawn(const Segment& segment, Body body) {
  const pid_t child = ::fork();
  if (child != 0) return child;
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a test that failed or timed out
  exobus::Result<std::unique_ptr<Segment>> opened = Segment::map(::dup(segment.fd()));
  if (!opened) ::_exit(3);
  DataPlane plane(*opened.value());
  body(plane);
  ::_exit(0);
}

TEST(ReadyRingMultiProcess, FourProducersFourConsumersLoseAndDuplicateNothing) {
  constexpr std::uint32_t kProducers = 4, kConsumers = 4;
  const auto per_producer = static_cast<std::uint32_t>(5'000'000 / kProducers / kScaleDown);
  ScratchSegment bus(stress_spec(), "multiprocess");
  Ledger ledger(kProducers, per_producer);

  std::vector<pid_t> children;
  for (std::uint32_t c = 0; c < kConsumers; ++c) {
    children.push_back(spawn(
        bus.segment(), [&, c](DataPlane& plane) { consume(plane, plane.lane_of(1 + c, 0), kProducers, 0, ledger); }));
  }
  for (std::uint32_t p = 0; p < kProducers; ++p) {
    children.push_back(spawn(bus.segment(), [&, p](DataPlane& plane) {
      produce(plane, plane.lane_of(1 + kConsumers + p, 0), p, per_producer, 0, ledger);
    }));
  }
  for (const pid_t child : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  }

  EXPECT_EQ(ledger.errors(), 0u);
  EXPECT_EQ(ledger.consumed(), ledger.total());
  std::printf("%llu messages delivered exactly once\n", static_cast<unsigned long long>(ledger.consumed()));
  EXPECT_EQ(ledger.missing(), 0u);
  EXPECT_EQ(ledger.duplicated(), 0u);
  const BusAudit audit = bus.plane().audit();
  EXPECT_EQ(audit.pool.free, audit.pool.total);
  EXPECT_EQ(audit.leased + audit.queued + audit.in_flight_slots, 0u);
}

}  // namespace
}  // namespace exobus::shm
