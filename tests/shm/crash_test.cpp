// An instance dies at every step of every shm protocol; the daemon's Recovery must leave
// nothing acknowledged-as-sent lost, nothing refused delivered, every fan-out at all its
// targets or none, every repeated delivery flagged, nothing leaked, and traffic flowing.
// Two variants of each case: in-process "abandon" (the operation is cut short by an
// exception at the fault point, leaving shared state exactly as a death would: fast and
// deterministic) and a real child process, mapping only what its type is granted, that
// kills itself with SIGKILL at the same point. Then the recoverer itself dies mid-way,
// and the next one finishes the job.
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include "crash_workload.hpp"

namespace exobus::shm {
namespace {

using namespace testing;

constexpr std::uint32_t kRounds = 40;

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

// Runs `body` in a child process that never outlives the test; returns how it ended.
template <class Body>
int in_child(Body body) {
  const pid_t child = ::fork();
  if (child == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    try {
      body();
    } catch (...) {
      ::_exit(4);  // never back into the test runner in the child
    }
    ::_exit(0);
  }
  int status = 0;
  if (child < 0 || ::waitpid(child, &status, 0) != child) return -1;
  return status;
}

bool killed(int status) { return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL; }

// The victim as a separate service: it maps only what sender's type is granted.
void run_victim_in_child(ScratchBus& bus, Journal& journal, FaultPoint point, std::uint32_t hits) {
  Result<std::unique_ptr<BusMemory>> attached = attach_as(bus.memory(), kSenderType);
  if (!attached) ::_exit(3);
  DataPlane plane(*attached.value(), kSenderType, kVictim);
  arm_fault(point, hits, FaultAction::kill_process);
  victim_workload(plane, journal, kRounds);
}

class AbandonedAtFaultPoint : public ::testing::TestWithParam<CrashCase> {};

TEST_P(AbandonedAtFaultPoint, RecoveryLosesNothingDeliversNothingRefusedAndLeaksNothing) {
  ScratchBus bus(crash_shape(), "abandon");
  preload(bus);
  SharedJournal journal;
  DataPlane victim = bus.plane(kSenderType, kVictim);
  arm_fault(GetParam().point, GetParam().hits, FaultAction::throw_exception);
  bool fired = false;
  try {
    victim_workload(victim, *journal, kRounds);
  } catch (const FaultInjected& fault) {
    fired = true;
    EXPECT_EQ(fault.point, GetParam().point);
  }
  disarm_fault();
  ASSERT_TRUE(fired) << "the workload never reached " << to_string(GetParam().point);
  recover_victim(bus);
  drain_and_check(bus, *journal, GetParam().point);
}

INSTANTIATE_TEST_SUITE_P(EveryStep, AbandonedAtFaultPoint, ::testing::ValuesIn(all_cases()), case_name);

class KilledAtFaultPoint : public ::testing::TestWithParam<CrashCase> {};

TEST_P(KilledAtFaultPoint, RecoveryLosesNothingDeliversNothingRefusedAndLeaksNothing) {
  ScratchBus bus(crash_shape(), "kill");
  preload(bus);
  SharedJournal journal;
  const int status = in_child([&] { run_victim_in_child(bus, *journal, GetParam().point, GetParam().hits); });
  ASSERT_TRUE(killed(status)) << "the child was not killed at " << to_string(GetParam().point) << " (status "
                              << status << ")";
  recover_victim(bus);
  drain_and_check(bus, *journal, GetParam().point);
}

INSTANTIATE_TEST_SUITE_P(EveryStep, KilledAtFaultPoint, ::testing::ValuesIn(all_cases()), case_name);

// The workload reaches the refusals it is meant to check: a bus where the victim finishes
// has refused fan-outs, and nothing of them arrives.
TEST(CrashWorkload, WithoutADeathItsRefusedFanOutsReachNobody) {
  ScratchBus bus(crash_shape(), "no-death");
  preload(bus);
  SharedJournal journal;
  DataPlane victim = bus.plane(kSenderType, kVictim);
  victim_workload(victim, *journal, kRounds);
  EXPECT_EQ(journal->sent_count.load(), kObserverQueue);
  EXPECT_EQ(journal->refused_count.load(), kRounds - kObserverQueue);
  recover_victim(bus);  // it holds leases and replies: as if it left without settling them
  drain_and_check(bus, *journal);
}

// --- single steps, named ---

struct OneStep : ::testing::Test {
  // Runs `step` with `point` armed to throw at its first execution.
  template <class Step>
  void die_at(FaultPoint point, Step step) {
    arm_fault(point, 1, FaultAction::throw_exception);
    EXPECT_THROW(step(), FaultInjected) << to_string(point);
    disarm_fault();
  }
  std::uint32_t copies_at(DataPlane& plane, Link& link, std::uint32_t id) {
    std::uint32_t copies = 0;
    drain(plane, link, [&](std::uint32_t taken, const Delivery&) { copies += taken == id; });
    return copies;
  }

  ScratchBus bus{crash_shape(), "one-step"};
  DataPlane victim = bus.plane(kSenderType, kVictim);
  DataPlane receiver = bus.plane(kReceiverType, 0);
  DataPlane observer = bus.plane(kObserverType, 0);
  LaneCursor sending{victim.lane(kFirstSendLane)};
};

TEST_F(OneStep, AFanOutWhoseSenderDiedAfterItsCommitReachesEveryTarget) {
  die_at(FaultPoint::send_committed, [&] { fan_out(victim, sending, 42); });
  const RecoveryReport report = recover_victim(bus);
  EXPECT_EQ(report.sends_completed, 1u);
  EXPECT_EQ(copies_at(receiver, bus.link(kCommandLink), 42), 1u);
  EXPECT_EQ(copies_at(observer, bus.link(kObserverLink), 42), 1u);
  EXPECT_TRUE(census_of(bus.memory()).quiet()) << census_of(bus.memory()).describe();
}

TEST_F(OneStep, AFanOutWhoseSenderDiedBeforeItsCommitReachesNobody) {
  die_at(FaultPoint::send_between_targets, [&] { fan_out(victim, sending, 42); });
  const RecoveryReport report = recover_victim(bus);
  EXPECT_EQ(report.sends_undone, 1u);
  EXPECT_EQ(copies_at(receiver, bus.link(kCommandLink), 42), 0u);
  EXPECT_EQ(copies_at(observer, bus.link(kObserverLink), 42), 0u);
  EXPECT_TRUE(census_of(bus.memory()).quiet()) << census_of(bus.memory()).describe();
}

TEST_F(OneStep, AClaimItsSenderDiedBeforeRecordingBecomesATombstone) {
  die_at(FaultPoint::push_claimed, [&] { fan_out(victim, sending, 42); });
  EXPECT_EQ(bus.link(kCommandLink).type_channel().census().writing, 1u);
  const RecoveryReport report = recover_victim(bus);
  EXPECT_EQ(report.tombstones, 1u);
  EXPECT_EQ(copies_at(receiver, bus.link(kCommandLink), 42), 0u);
  EXPECT_TRUE(census_of(bus.memory()).quiet()) << census_of(bus.memory()).describe();
}

TEST_F(OneStep, AChunkItsSenderDiedWithIsFreed) {
  die_at(FaultPoint::allocate_claimed, [&] { fan_out(victim, sending, 42); });
  EXPECT_EQ(recover_victim(bus).chunks_reclaimed, 1u);
  EXPECT_TRUE(census_of(bus.memory()).quiet()) << census_of(bus.memory()).describe();
}

TEST_F(OneStep, AMessageHalfTakenByADeadInstanceIsRedeliveredToItsType) {
  preload(bus);
  LaneCursor taking{victim.lane(kCommandLane)};
  Link& incoming = bus.link(kReplyLink);
  die_at(FaultPoint::take_claimed, [&] { victim.take(taking, incoming, incoming.type_channel(), 0); });
  const RecoveryReport report = recover_victim(bus);
  EXPECT_EQ(report.reads_resolved, 1u);
  EXPECT_EQ(report.leases_requeued, 1u);
  DataPlane survivor = bus.plane(kSenderType, kSurvivor);
  LaneCursor cursor{survivor.lane(kCommandLane)};
  const TakeOutcome again = survivor.take_retry(cursor, 0);
  ASSERT_EQ(again.status, TakeOutcomeStatus::ok);
  EXPECT_EQ(id_of(again.delivery.payload), 1u);
  EXPECT_TRUE(again.delivery.redelivered());
}

TEST_F(OneStep, AReplyHalfTakenByADeadRequesterIsDroppedWithTheRest) {
  preload(bus);
  LaneCursor inbox{victim.lane(kReplyLane)};
  Link& incoming = bus.link(kReplyLink);
  die_at(FaultPoint::take_claimed, [&] { victim.take(inbox, incoming, *incoming.reply_channel(kVictim), 0); });
  const RecoveryReport report = recover_victim(bus);
  EXPECT_EQ(report.replies_dropped, kPreloadedReplies);
  EXPECT_EQ(census_of(bus.memory()).reading, 0u);
  EXPECT_EQ(incoming.reply_channel(kVictim)->depth(), 0u);
  EXPECT_EQ(census_of(bus.memory()).retry_queued, 0u) << "a reply is for its requester alone";
}

// A consumer dies holding a slot half-taken, and producers then fill the channel: the tail
// comes round to that very slot, so the channel reads full (and empty to consumers) until
// recovery frees the slot. Recovery must not wait for room in that channel to hand the
// message on, or the channel is wedged for good.
TEST(HalfTakenSlotOfAFullChannel, RecoveryUnwedgesTheChannelAndLosesNothing) {
  ScratchOptions options;
  options.channel_capacity = 8;
  ScratchBus bus(options, "wedge");
  DataPlane sender = bus.plane(kSenderType, 0);
  DataPlane victim = bus.plane(kReceiverType, kVictim);
  DataPlane survivor = bus.plane(kReceiverType, kSurvivor);
  LaneCursor sending{sender.lane(kFirstSendLane)};
  LaneCursor dying{victim.lane(kCommandLane)};
  LaneCursor surviving{survivor.lane(kCommandLane)};
  Link& link = bus.link(kCommandLink);
  Channel& channel = link.type_channel();
  ASSERT_TRUE(send_one(sender, sending, link, testing::bytes_of(std::string("half-taken"))).ok());
  arm_fault(FaultPoint::take_claimed, 1, FaultAction::throw_exception);
  EXPECT_THROW(victim.take(dying, link, channel, 0), FaultInjected);
  disarm_fault();

  std::uint32_t filled = 0;
  while (send_one(sender, sending, link, testing::bytes_of(std::to_string(filled))).ok()) ++filled;
  ASSERT_EQ(filled, channel.capacity() - 1);
  for (std::uint32_t k = 0; k < filled; ++k) {
    const TakeOutcome outcome = survivor.take(surviving, link, channel, 0);
    ASSERT_EQ(outcome.status, TakeOutcomeStatus::ok);
    ASSERT_EQ(survivor.ack(outcome.delivery.lease), LeaseStatus::ok);
  }
  EXPECT_EQ(send_one(sender, sending, link, testing::bytes_of(std::string("x"))).result.status,
            SendStatus::queue_full)
      << "wedged behind the half-taken slot";

  const RecoveryReport report = Recovery(bus.memory()).recover_instance(kReceiverType, kVictim);
  EXPECT_EQ(report.pending, 0u);
  EXPECT_EQ(report.reads_resolved, 1u);
  const TakeOutcome requeued = survivor.take_retry(surviving, 0);
  ASSERT_EQ(requeued.status, TakeOutcomeStatus::ok);
  EXPECT_EQ(text_of(requeued.delivery.payload), "half-taken");
  EXPECT_TRUE(requeued.delivery.redelivered());
  ASSERT_EQ(survivor.ack(requeued.delivery.lease), LeaseStatus::ok);
  // The channel takes a full lap of traffic again.
  for (std::uint32_t k = 0; k < channel.capacity(); ++k) {
    ASSERT_TRUE(send_one(sender, sending, link, testing::bytes_of(std::string("after"))).ok()) << "send " << k;
  }
  const BusCensus census = census_of(bus.memory());
  EXPECT_EQ(census.queued, channel.capacity());
  EXPECT_EQ(census.leases + census.reading + census.writing, 0u);
}

// --- the recoverer dies ---

// The victim dies at one step, then the daemon recovering it dies at another; a restarted
// daemon recovers its own dead incarnation's lanes, then the victim again.
struct RecovererCase {
  FaultPoint victim_point;
  std::uint32_t victim_hits;
  FaultPoint recoverer_point;
  std::uint32_t recoverer_hits;
};

std::string recoverer_case_name(const ::testing::TestParamInfo<RecovererCase>& info) {
  return std::string(to_string(info.param.victim_point)) + "_hit" + std::to_string(info.param.victim_hits) +
         "_then_" + std::string(to_string(info.param.recoverer_point)) + "_hit" +
         std::to_string(info.param.recoverer_hits);
}

// Hit 8 of take_leased is a command (hit 9 a reply), so the recoverer has a copy to push.
const RecovererCase kRecovererCases[] = {
    {FaultPoint::take_leased, 8, FaultPoint::recovery_step, 1},
    {FaultPoint::take_claimed, 8, FaultPoint::recovery_step, 1},
    {FaultPoint::take_claimed, 9, FaultPoint::recovery_step, 1},
    {FaultPoint::send_committed, 3, FaultPoint::recovery_step, 1},
    {FaultPoint::send_committed, 3, FaultPoint::recovery_step, 2},
    {FaultPoint::send_between_targets, 3, FaultPoint::recovery_step, 1},
    {FaultPoint::send_between_targets, 3, FaultPoint::recovery_step, 2},
    {FaultPoint::take_leased, 8, FaultPoint::reclaim_marked, 1},
    {FaultPoint::take_leased, 8, FaultPoint::reclaim_pushed, 1},
    {FaultPoint::take_leased, 8, FaultPoint::reclaim_pushed, 2},
    {FaultPoint::take_leased, 8, FaultPoint::push_claimed, 1},
    {FaultPoint::take_leased, 8, FaultPoint::push_recorded, 1},
};

void abandon_victim(ScratchBus& bus, Journal& journal, const RecovererCase& param) {
  DataPlane victim = bus.plane(kSenderType, kVictim);
  arm_fault(param.victim_point, param.victim_hits, FaultAction::throw_exception);
  EXPECT_THROW(victim_workload(victim, journal, kRounds), FaultInjected);
  disarm_fault();
}

void recover_again(ScratchBus& bus) {
  const RecoveryReport own = Recovery(bus.memory()).recover_daemon();
  EXPECT_EQ(own.pending, 0u);
  recover_victim(bus);
}

class RecovererAbandoned : public ::testing::TestWithParam<RecovererCase> {};

TEST_P(RecovererAbandoned, TheNextRecoveryFinishesTheJob) {
  ScratchBus bus(crash_shape(), "recoverer");
  preload(bus);
  SharedJournal journal;
  abandon_victim(bus, *journal, GetParam());
  arm_fault(GetParam().recoverer_point, GetParam().recoverer_hits, FaultAction::throw_exception);
  EXPECT_THROW(Recovery(bus.memory()).recover_instance(kSenderType, kVictim), FaultInjected)
      << "recovery never reached " << to_string(GetParam().recoverer_point);
  disarm_fault();
  recover_again(bus);
  drain_and_check(bus, *journal, GetParam().victim_point);
}

INSTANTIATE_TEST_SUITE_P(EveryStep, RecovererAbandoned, ::testing::ValuesIn(kRecovererCases), recoverer_case_name);

class RecovererKilled : public ::testing::TestWithParam<RecovererCase> {};

// The recoverer is a real process (a daemon, mapping the whole bus) killed mid-recovery.
TEST_P(RecovererKilled, TheNextRecoveryFinishesTheJob) {
  ScratchBus bus(crash_shape(), "recoverer-kill");
  preload(bus);
  SharedJournal journal;
  abandon_victim(bus, *journal, GetParam());
  const int status = in_child([&] {
    arm_fault(GetParam().recoverer_point, GetParam().recoverer_hits, FaultAction::kill_process);
    Recovery(bus.memory()).recover_instance(kSenderType, kVictim);
  });
  ASSERT_TRUE(killed(status)) << "recovery never reached " << to_string(GetParam().recoverer_point) << " (status "
                              << status << ")";
  recover_again(bus);
  drain_and_check(bus, *journal, GetParam().victim_point);
}

INSTANTIATE_TEST_SUITE_P(EveryStep, RecovererKilled, ::testing::ValuesIn(kRecovererCases), recoverer_case_name);

}  // namespace
}  // namespace exobus::shm
