// A process dies at every step of every shm protocol; recovery must leave no message
// lost, no duplicate unflagged, no chunk or lease leaked, and traffic flowing.
// Two variants of each case: in-process "abandon" (the operation is cut short by an
// exception at the fault point, leaving shared state exactly as a death would: fast and
// deterministic) and a real child process killed with SIGKILL at the same point.
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crash_workload.hpp"

namespace exobus::shm {
namespace {

using namespace testing;

struct CrashCase {
  FaultPoint point;
  std::uint32_t hits;
};

std::string case_name(const ::testing::TestParamInfo<CrashCase>& info) {
  return std::string(to_string(info.param.point)) + "_hit" + std::to_string(info.param.hits);
}

std::vector<CrashCase> all_cases() {
  std::vector<CrashCase> cases;
  for (const FaultPoint point : kVictimFaultPoints) {
    for (const std::uint32_t hits : {1u, 2u, 5u, 7u}) cases.push_back({point, hits});
  }
  return cases;
}

void recover_victim(DataPlane& plane) {
  LaneCursor daemon{plane.lane_of(0, 0)};
  const RecoveryReport report = Recovery(plane, daemon).recover_instance(kVictim);
  EXPECT_EQ(report.pending, 0u);
}

class AbandonedAtFaultPoint : public ::testing::TestWithParam<CrashCase> {};

TEST_P(AbandonedAtFaultPoint, RecoveryLosesNothingAndLeaksNothing) {
  ScratchSegment bus(crash_spec(), "abandon");
  DataPlane& plane = bus.plane();
  const auto preloaded = preload(plane, 20);
  SharedJournal journal;
  arm_fault(GetParam().point, GetParam().hits, FaultAction::throw_exception);
  bool fired = false;
  try {
    victim_workload(plane, *journal, 40);
  } catch (const FaultInjected& fault) {
    fired = true;
    EXPECT_EQ(fault.point, GetParam().point);
  }
  disarm_fault();
  EXPECT_TRUE(fired) << "the workload never reached " << to_string(GetParam().point);
  recover_victim(plane);
  drain_and_check(plane, *journal, preloaded);
}

INSTANTIATE_TEST_SUITE_P(EveryStep, AbandonedAtFaultPoint, ::testing::ValuesIn(all_cases()), case_name);

class KilledAtFaultPoint : public ::testing::TestWithParam<CrashCase> {};

// The child maps the segment itself, from its descriptor, as a separate service would.
TEST_P(KilledAtFaultPoint, RecoveryLosesNothingAndLeaksNothing) {
  ScratchSegment bus(crash_spec(), "kill");
  DataPlane& plane = bus.plane();
  const auto preloaded = preload(plane, 20);
  SharedJournal journal;
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a test that failed or timed out
    exobus::Result<std::unique_ptr<Segment>> opened = Segment::map(::dup(bus.segment().fd()));
    if (!opened) ::_exit(3);
    DataPlane child_plane(*opened.value());
    arm_fault(GetParam().point, GetParam().hits, FaultAction::kill_process);
    victim_workload(child_plane, *journal, 40);
    ::_exit(0);  // never reached when the fault fires
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "the child was not killed at " << to_string(GetParam().point) << " (status " << status << ")";
  recover_victim(plane);
  drain_and_check(plane, *journal, preloaded);
}

INSTANTIATE_TEST_SUITE_P(EveryStep, KilledAtFaultPoint, ::testing::ValuesIn(all_cases()), case_name);

// A consumer dies holding a slot half-taken, and producers then fill the ring: the tail
// comes round to that very slot, so the ring reads full (and empty to consumers) until
// recovery frees the slot. Recovery must not wait for room in that ring to requeue the
// message, or the ring is wedged for good.
TEST(HalfTakenSlotOfAFullRing, RecoveryUnwedgesTheRingAndLosesNothing) {
  ScratchSegment bus(small_spec(8, 1), "wedge");
  DataPlane& plane = bus.plane();
  LaneCursor sender{plane.lane_of(kSender, 0)};
  LaneCursor victim{plane.lane_of(kVictim, 0)};
  LaneCursor survivor{plane.lane_of(kSurvivor, 0)};
  const std::uint16_t ring[] = {0};
  ASSERT_EQ(plane.send(sender, bytes_of("half-taken"), ring).status, SendStatus::ok);
  arm_fault(FaultPoint::take_claimed, 1, FaultAction::throw_exception);
  EXPECT_THROW(plane.take(victim, 0, 0), FaultInjected);
  disarm_fault();

  std::uint32_t filled = 0;
  while (plane.send(sender, bytes_of(std::to_string(filled)), ring).status == SendStatus::ok) ++filled;
  ASSERT_EQ(filled, plane.ring(0).capacity() - 1);
  for (std::uint32_t k = 0; k < filled; ++k) {
    const TakeOutcome outcome = plane.take(survivor, 0, 0);
    ASSERT_EQ(outcome.status, TakeOutcomeStatus::ok);
    ASSERT_EQ(plane.ack(outcome.delivery.lease), LeaseStatus::ok);
  }

  LaneCursor daemon{plane.lane_of(0, 0)};
  const RecoveryReport report = Recovery(plane, daemon).recover_instance(kVictim);
  EXPECT_EQ(report.pending, 0u);
  EXPECT_EQ(report.reads_resolved, 1u);
  const TakeOutcome requeued = plane.take(survivor, 0, 0);
  ASSERT_EQ(requeued.status, TakeOutcomeStatus::ok);
  EXPECT_EQ(text_of(requeued.delivery.payload), "half-taken");
  EXPECT_TRUE(requeued.delivery.redelivered());
  ASSERT_EQ(plane.ack(requeued.delivery.lease), LeaseStatus::ok);
  // The ring takes a full lap of traffic again.
  for (std::uint32_t k = 0; k < plane.ring(0).capacity(); ++k) {
    ASSERT_EQ(plane.send(sender, bytes_of("after"), ring).status, SendStatus::ok) << "send " << k;
  }
  const BusAudit audit = plane.audit();
  EXPECT_EQ(audit.queued, plane.ring(0).capacity());
  EXPECT_EQ(audit.leased, 0u);
  EXPECT_EQ(audit.in_flight_slots, 0u);
}

// The recoverer itself dies (the daemon killed mid-recovery); the next recovery finishes.
// The victim dies holding a lease (take_leased) or a half-taken slot (take_claimed).
struct RecoveryCase {
  FaultPoint victim_point;
  std::uint32_t recovery_hits;
};

class RecoveryAbandoned : public ::testing::TestWithParam<RecoveryCase> {};

TEST_P(RecoveryAbandoned, SecondRecoveryFinishesTheJob) {
  ScratchSegment bus(crash_spec(), "recovery");
  DataPlane& plane = bus.plane();
  const auto preloaded = preload(plane, 20);
  SharedJournal journal;
  arm_fault(GetParam().victim_point, 9, FaultAction::throw_exception);
  EXPECT_THROW(victim_workload(plane, *journal, 40), FaultInjected);
  arm_fault(FaultPoint::recovery_step, GetParam().recovery_hits, FaultAction::throw_exception);
  LaneCursor first_daemon{plane.lane_of(0, 0)};
  try {
    Recovery(plane, first_daemon).recover_instance(kVictim);
  } catch (const FaultInjected&) {
  }
  disarm_fault();
  // The restarted daemon recovers its own dead incarnation, then the victim again.
  LaneCursor second_daemon{plane.lane_of(0, 1)};
  Recovery(plane, second_daemon).recover_instance(0);
  recover_victim(plane);
  drain_and_check(plane, *journal, preloaded);
}

std::string recovery_case_name(const ::testing::TestParamInfo<RecoveryCase>& info) {
  return std::string(to_string(info.param.victim_point)) + "_recovery_hit" + std::to_string(info.param.recovery_hits);
}

INSTANTIATE_TEST_SUITE_P(EveryStep, RecoveryAbandoned,
                         ::testing::Values(RecoveryCase{FaultPoint::take_leased, 1},
                                           RecoveryCase{FaultPoint::take_leased, 2},
                                           RecoveryCase{FaultPoint::take_leased, 3},
                                           RecoveryCase{FaultPoint::take_claimed, 1}),
                         recovery_case_name);

}  // namespace
}  // namespace exobus::shm
