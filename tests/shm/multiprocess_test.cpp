// Producer and consumer processes on one bus, each mapping only what its service type is
// granted (attach_as: the other side's halves read-only), as separate services do: nothing
// lost, nothing duplicated unflagged, each producer's order kept, fan-outs all or nothing;
// and real kill -9 of a consumer or a producer mid-stream, after which the daemon's
// Recovery loses nothing that was acknowledged as sent and delivers nothing half sent.
// Bounded by message counts; the parent waits for counts, never for a time.
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>

#include "exobus/shm/recovery.hpp"
#include "stress_support.hpp"

namespace exobus::shm {
namespace {

using namespace testing;

// Forks `body(plane, memory)` as a child process that maps the bus as an instance `member`
// of `type` maps it, from descriptors of its own.
template <class Body>
pid_t spawn(ScratchBus& bus, std::uint16_t type, std::uint32_t member, Body body) {
  const pid_t child = ::fork();
  if (child != 0) return child;
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a test that failed or timed out
  Result<std::unique_ptr<BusMemory>> attached = attach_as(bus.memory(), type);
  if (!attached) ::_exit(3);
  DataPlane plane(*attached.value(), type, member);
  try {
    body(plane, *attached.value());
  } catch (...) {
    ::_exit(4);  // never back into the test runner in the child
  }
  ::_exit(0);
}

void expect_exited_cleanly(pid_t child) {
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
}

// Kills `child` with SIGKILL once `reached()` holds (polling; no time is asserted).
template <class Reached>
void kill_when(pid_t child, Reached&& reached) {
  while (!reached()) ::usleep(500);
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the child ended before it was killed";
}

void expect_quiet(const BusMemory& memory) {
  const BusCensus census = census_of(memory);
  EXPECT_TRUE(census.quiet()) << census.describe();
}

TEST(OneLinkMultiProcess, FourProducerAndFourConsumerProcessesLoseDuplicateAndReorderNothing) {
  constexpr std::uint32_t kProducers = 4, kConsumers = 4;
  const auto per_producer = static_cast<std::uint32_t>(4'000'000 / kProducers / kScaleDown);
  ScratchBus bus(stress_options(), "multiprocess");
  Ledger ledger(kProducers, per_producer);

  std::vector<pid_t> children;
  for (std::uint32_t c = 0; c < kConsumers; ++c) {
    children.push_back(spawn(bus, kReceiverType, c, [&](DataPlane& plane, BusMemory& memory) {
      consume(plane, *memory.link(kCommandLink), ledger, {}, [&] { return ledger.acked_distinct() == ledger.size(); });
    }));
  }
  for (std::uint32_t p = 0; p < kProducers; ++p) {
    children.push_back(spawn(bus, kSenderType, p, [&, p](DataPlane& plane, BusMemory& memory) {
      const Destination to[] = {{memory.link(kCommandLink), kTypeChannel}};
      produce(plane, p, per_producer, to, ledger);
    }));
  }
  for (const pid_t child : children) expect_exited_cleanly(child);

  EXPECT_EQ(ledger.errors(), 0u);
  EXPECT_EQ(ledger.count_where([](std::uint32_t delivered, std::uint32_t) { return delivered != 1; }), 0u)
      << "messages lost or delivered twice";
  std::printf("%llu messages delivered exactly once\n", static_cast<unsigned long long>(ledger.distinct()));
  expect_quiet(bus.memory());
}

TEST(FanOutMultiProcess, RefusedFanOutsReachNobodyAndSentOnesReachBothTypesOnce) {
  constexpr std::uint32_t kProducers = 3;
  constexpr std::uint64_t kRefusalsFirst = 1000;
  const auto per_producer = static_cast<std::uint32_t>(300'000 / kProducers / kScaleDown);
  BusShape shape = three_type_shape(stress_options());
  shape.links[kObserverLink].shape.channel_capacity = 64;
  ScratchBus bus(shape, "multiprocess-fan-out");
  Ledger at_receiver(kProducers, per_producer), at_observer(kProducers, per_producer);
  Outcomes outcomes(kProducers, per_producer);
  Shared<std::atomic<std::uint32_t>> producing(1);
  producing[0].store(kProducers);
  const auto done = [&](const Ledger& ledger) {
    return producing[0].load(std::memory_order_acquire) == 0 && ledger.acked_distinct() == outcomes.sent();
  };

  std::vector<pid_t> children;
  for (std::uint32_t c = 0; c < 2; ++c) {
    children.push_back(spawn(bus, kReceiverType, c, [&](DataPlane& plane, BusMemory& memory) {
      consume(plane, *memory.link(kCommandLink), at_receiver, {}, [&] { return done(at_receiver); });
    }));
  }
  children.push_back(spawn(bus, kObserverType, 0, [&](DataPlane& plane, BusMemory& memory) {
    while (outcomes.refused() < kRefusalsFirst && producing[0].load(std::memory_order_acquire) > 0) ::usleep(100);
    consume(plane, *memory.link(kObserverLink), at_observer, {}, [&] { return done(at_observer); });
  }));
  for (std::uint32_t p = 0; p < kProducers; ++p) {
    children.push_back(spawn(bus, kSenderType, p, [&, p](DataPlane& plane, BusMemory& memory) {
      const Destination to[] = {{memory.link(kCommandLink), kTypeChannel}, {memory.link(kObserverLink), kTypeChannel}};
      produce(plane, p, per_producer, to, at_receiver, &outcomes);
      producing[0].fetch_sub(1, std::memory_order_release);
    }));
  }
  for (const pid_t child : children) expect_exited_cleanly(child);

  EXPECT_EQ(at_receiver.errors() + at_observer.errors(), 0u);
  EXPECT_GE(outcomes.refused(), kRefusalsFirst);
  std::uint64_t wrong = 0;
  for (std::uint64_t k = 0; k < at_receiver.size(); ++k) {
    const std::uint32_t expected = outcomes.of(k) == Outcome::sent ? 1 : 0;
    wrong += at_receiver.deliveries_of(k) != expected || at_observer.deliveries_of(k) != expected;
  }
  EXPECT_EQ(wrong, 0u) << "fan-outs delivered other than all-or-nothing, once";
  std::printf("%llu fan-outs sent, %llu refused\n", static_cast<unsigned long long>(outcomes.sent()),
              static_cast<unsigned long long>(outcomes.refused()));
  expect_quiet(bus.memory());
}

// A consumer process is killed with kill -9 mid-stream, whatever it was doing: taking,
// holding, acknowledging (consumers hold up to 16 deliveries before acknowledging them,
// so it most likely dies holding some). The daemon recovers its instance; the other
// consumers get what it held, flagged as redelivered, and every message is acknowledged.
TEST(KilledConsumerMultiProcess, WhatItHeldIsRedeliveredFlaggedAndNothingIsLost) {
  constexpr std::uint32_t kProducers = 2, kConsumers = 3, kVictim = 0;
  const auto per_producer = static_cast<std::uint32_t>(600'000 / kProducers / kScaleDown);
  ScratchBus bus(stress_options(), "multiprocess-killed-consumer");
  Ledger ledger(kProducers, per_producer);
  Shared<std::atomic<std::uint32_t>> recovered(1);
  const auto done = [&] {
    return recovered[0].load(std::memory_order_acquire) == 1 && ledger.acked_distinct() == ledger.size();
  };

  std::vector<pid_t> consumers;
  for (std::uint32_t c = 0; c < kConsumers; ++c) {
    consumers.push_back(spawn(bus, kReceiverType, c, [&](DataPlane& plane, BusMemory& memory) {
      ConsumerRules rules;
      rules.batch = 16;
      consume(plane, *memory.link(kCommandLink), ledger, rules, done);
    }));
  }
  std::vector<pid_t> producers;
  for (std::uint32_t p = 0; p < kProducers; ++p) {
    producers.push_back(spawn(bus, kSenderType, p, [&, p](DataPlane& plane, BusMemory& memory) {
      const Destination to[] = {{memory.link(kCommandLink), kTypeChannel}};
      produce(plane, p, per_producer, to, ledger);
    }));
  }
  kill_when(consumers[kVictim], [&] { return ledger.distinct() >= ledger.size() / 3 || ledger.errors() != 0; });
  const RecoveryReport report = Recovery(bus.memory()).recover_instance(kReceiverType, kVictim);
  recovered[0].store(1, std::memory_order_release);
  EXPECT_EQ(report.pending, 0u);
  std::printf("recovered: %u leases requeued, %u half-taken slots resolved\n", report.leases_requeued,
              report.reads_resolved);
  for (const pid_t child : producers) expect_exited_cleanly(child);
  for (std::uint32_t c = 0; c < kConsumers; ++c) {
    if (c != kVictim) expect_exited_cleanly(consumers[c]);
  }

  EXPECT_EQ(ledger.errors(), 0u) << "an unflagged duplicate, a broken order, a failed step";
  EXPECT_EQ(ledger.count_where([](std::uint32_t, std::uint32_t acked) { return acked == 0; }), 0u) << "messages lost";
  expect_quiet(bus.memory());
}

// A producer process is killed with kill -9 mid-stream, whatever it was doing: allocating,
// claiming, committing, publishing. Every message its send returned ok for is delivered
// once; the one it was sending is delivered once or not at all; none after it exists.
TEST(KilledProducerMultiProcess, WhatItSentArrivesOnceAndWhatItHadNotSentNever) {
  constexpr std::uint32_t kProducers = 3, kConsumers = 2, kVictim = 0;
  const auto per_producer = static_cast<std::uint32_t>(600'000 / kScaleDown);
  const auto survivors_send = per_producer / 4;
  ScratchBus bus(stress_options(), "multiprocess-killed-producer");
  Ledger ledger(kProducers, per_producer);
  Outcomes outcomes(kProducers, per_producer);
  Shared<std::atomic<std::uint32_t>> flags(2);  // [0]: recovered, [1]: survivors done
  const auto done = [&] {
    return flags[0].load(std::memory_order_acquire) == 1 && flags[1].load(std::memory_order_acquire) == kProducers - 1;
  };

  std::vector<pid_t> consumers;
  for (std::uint32_t c = 0; c < kConsumers; ++c) {
    consumers.push_back(spawn(bus, kReceiverType, c, [&](DataPlane& plane, BusMemory& memory) {
      consume(plane, *memory.link(kCommandLink), ledger, {}, done);
    }));
  }
  std::vector<pid_t> producers;
  for (std::uint32_t p = 0; p < kProducers; ++p) {
    const std::uint32_t count = p == kVictim ? per_producer : survivors_send;
    producers.push_back(spawn(bus, kSenderType, p, [&, p, count](DataPlane& plane, BusMemory& memory) {
      const Destination to[] = {{memory.link(kCommandLink), kTypeChannel}};
      produce(plane, p, count, to, ledger, &outcomes);
      if (p != kVictim) flags[1].fetch_add(1, std::memory_order_release);
    }));
  }
  kill_when(producers[kVictim], [&] { return outcomes.sent() >= 20000 || ledger.errors() != 0; });
  const RecoveryReport report = Recovery(bus.memory()).recover_instance(kSenderType, kVictim);
  flags[0].store(1, std::memory_order_release);
  EXPECT_EQ(report.pending, 0u);
  for (std::uint32_t p = 0; p < kProducers; ++p) {
    if (p != kVictim) expect_exited_cleanly(producers[p]);
  }
  for (const pid_t child : consumers) expect_exited_cleanly(child);

  EXPECT_EQ(ledger.errors(), 0u);
  std::uint64_t lost = 0, duplicated = 0, phantom = 0, in_doubt = 0;
  for (std::uint32_t p = 0; p < kProducers; ++p) {
    bool past_the_last = false;  // the victim's messages after the one it died sending
    for (std::uint32_t sequence = 0; sequence < per_producer; ++sequence) {
      const std::uint64_t k = ledger.index({p, sequence});
      const std::uint32_t delivered = ledger.deliveries_of(k);
      duplicated += delivered > 1;
      if (outcomes.of(k) == Outcome::sent) {
        lost += delivered == 0;
      } else if (outcomes.of(k) == Outcome::refused) {
        phantom += delivered != 0;
      } else if (p == kVictim && !past_the_last) {
        past_the_last = true;
        in_doubt += delivered;  // sent or not: either is right
      } else {
        phantom += delivered != 0;
      }
    }
  }
  EXPECT_EQ(lost, 0u) << "messages whose send returned ok were lost";
  EXPECT_EQ(duplicated, 0u);
  EXPECT_EQ(phantom, 0u) << "messages never sent were delivered";
  std::printf("the send cut short was %s\n", in_doubt != 0 ? "delivered" : "undone");
  expect_quiet(bus.memory());
}

}  // namespace
}  // namespace exobus::shm
