// Many threads through a bus's links, pools, lease tables and retry rings: nothing lost,
// nothing duplicated unflagged, each producer's order kept, a fan-out refused by one full
// target reaching nobody, every reply reaching its requester alone. Bounded by message
// counts, never by time. Runs under TSan too (with smaller counts).
#include <gtest/gtest.h>

#include <bit>
#include <cstdio>
#include <thread>
#include <vector>

#include "stress_support.hpp"

namespace exobus::shm {
namespace {

using namespace testing;

void join_all(std::vector<std::thread>& threads) {
  for (std::thread& thread : threads) thread.join();
}

void expect_quiet(const BusMemory& memory) {
  const BusCensus census = census_of(memory);
  EXPECT_TRUE(census.quiet()) << census.describe();
}

TEST(OneLinkStress, EightProducersFourConsumersLoseDuplicateAndReorderNothing) {
  constexpr std::uint32_t kProducers = 8, kConsumers = 4;
  const auto per_producer = static_cast<std::uint32_t>(16'000'000 / kProducers / kScaleDown);
  ScratchBus bus(stress_options(), "stress");
  Link& link = bus.link(kCommandLink);
  const Destination to[] = {{&link, kTypeChannel}};
  Ledger ledger(kProducers, per_producer);

  std::vector<std::thread> threads;
  for (std::uint32_t c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&, c] {
      DataPlane plane = bus.plane(kReceiverType, c);
      consume(plane, link, ledger, {}, [&] { return ledger.acked_distinct() == ledger.size(); });
    });
  }
  for (std::uint32_t p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      DataPlane plane = bus.plane(kSenderType, p);
      produce(plane, p, per_producer, to, ledger);
    });
  }
  join_all(threads);

  EXPECT_EQ(ledger.errors(), 0u);
  EXPECT_EQ(ledger.count_where([](std::uint32_t delivered, std::uint32_t) { return delivered != 1; }), 0u)
      << "messages lost or delivered twice";
  EXPECT_EQ(ledger.count_where([](std::uint32_t, std::uint32_t acked) { return acked != 1; }), 0u);
  std::printf("%llu messages delivered exactly once\n", static_cast<unsigned long long>(ledger.distinct()));
  expect_quiet(bus.memory());
}

// Producers fan every message out to receiver and observer, trying each once. The
// observer's short channel fills before its consumer starts, so many fan-outs are refused;
// a refused one must reach neither type, a sent one both, once.
TEST(FanOutStress, RefusedFanOutsReachNobodyAndSentOnesReachBothTypesOnce) {
  constexpr std::uint32_t kProducers = 4;
  constexpr std::uint64_t kRefusalsFirst = 1000;
  const auto per_producer = static_cast<std::uint32_t>(1'000'000 / kProducers / kScaleDown);
  BusShape shape = three_type_shape(stress_options());
  shape.links[kObserverLink].shape.channel_capacity = 64;
  ScratchBus bus(shape, "stress-fan-out");
  Link& commands = bus.link(kCommandLink);
  Link& observed = bus.link(kObserverLink);
  const Destination to[] = {{&commands, kTypeChannel}, {&observed, kTypeChannel}};
  Ledger at_receiver(kProducers, per_producer), at_observer(kProducers, per_producer);
  Outcomes outcomes(kProducers, per_producer);
  std::atomic<std::uint32_t> producing{kProducers};
  const auto done = [&](const Ledger& ledger) {
    return producing.load(std::memory_order_acquire) == 0 && ledger.acked_distinct() == outcomes.sent();
  };

  std::vector<std::thread> threads;
  for (std::uint32_t c = 0; c < 2; ++c) {
    threads.emplace_back([&, c] {
      DataPlane plane = bus.plane(kReceiverType, c);
      consume(plane, commands, at_receiver, {}, [&] { return done(at_receiver); });
    });
  }
  threads.emplace_back([&] {
    while (outcomes.refused() < kRefusalsFirst && producing.load(std::memory_order_acquire) > 0) {
      std::this_thread::yield();
    }
    DataPlane plane = bus.plane(kObserverType, 0);
    consume(plane, observed, at_observer, {}, [&] { return done(at_observer); });
  });
  for (std::uint32_t p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      DataPlane plane = bus.plane(kSenderType, p);
      produce(plane, p, per_producer, to, at_receiver, &outcomes);
      producing.fetch_sub(1, std::memory_order_release);
    });
  }
  join_all(threads);

  EXPECT_EQ(at_receiver.errors() + at_observer.errors(), 0u);
  EXPECT_GE(outcomes.refused(), kRefusalsFirst);
  EXPECT_EQ(outcomes.sent() + outcomes.refused(), at_receiver.size());
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

// Consumers release every third delivery (of a message delivered fewer than twice): it
// comes back through the retry ring, flagged, to any consumer; each message is
// acknowledged exactly once. The ring has room for every release there can be: a consumer
// preempted between claiming a ring slot and publishing it stalls the ring's consumers
// (ready_ring.hpp) while the others go on releasing, and a release that finds the ring
// full leaves its message to the daemon's expiry pass, which this test does not run.
TEST(RetryStress, ReleasedMessagesComeBackFlaggedAndAreAcknowledgedOnce) {
  constexpr std::uint32_t kProducers = 4, kConsumers = 4;
  const auto per_producer = static_cast<std::uint32_t>(400'000 / kProducers / kScaleDown);
  BusShape shape = two_type_shape(stress_options());
  shape.types[kReceiverType].shape.retry_capacity = std::bit_ceil(2 * kProducers * per_producer + 1);
  ScratchBus bus(shape, "stress-retry");
  Link& link = bus.link(kCommandLink);
  const Destination to[] = {{&link, kTypeChannel}};
  Ledger ledger(kProducers, per_producer);

  std::vector<std::thread> threads;
  for (std::uint32_t c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&, c] {
      DataPlane plane = bus.plane(kReceiverType, c);
      ConsumerRules rules;
      rules.release_every = 3;
      consume(plane, link, ledger, rules, [&] { return ledger.acked_distinct() == ledger.size(); });
    });
  }
  for (std::uint32_t p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      DataPlane plane = bus.plane(kSenderType, p);
      produce(plane, p, per_producer, to, ledger);
    });
  }
  join_all(threads);

  EXPECT_EQ(ledger.errors(), 0u);
  EXPECT_EQ(ledger.count_where([](std::uint32_t, std::uint32_t acked) { return acked != 1; }), 0u)
      << "messages lost or acknowledged twice";
  const std::uint64_t redelivered =
      ledger.count_where([](std::uint32_t delivered, std::uint32_t) { return delivered > 1; });
  EXPECT_GT(redelivered, ledger.size() / 10) << "the releases came back";
  expect_quiet(bus.memory());
}

// Six requesters (sender's instances) ask two responders (receiver's) over link 0; each
// reply goes back over link 1 into the reply channel of its requester's instance, which
// must get every one of its replies, once, and none of anyone else's.
TEST(ReplyStress, EveryReplyReachesItsRequesterOnlyAndOnce) {
  constexpr std::uint32_t kRequesters = 6, kResponders = 2, kWindow = 32;
  const auto per_requester = static_cast<std::uint32_t>(1'200'000 / kRequesters / kScaleDown);
  ScratchBus bus(stress_options(), "stress-replies");
  Link& requests = bus.link(kCommandLink);
  Link& replies = bus.link(kReplyLink);
  Ledger ledger(kRequesters, per_requester);
  std::atomic<std::uint32_t> asking{kRequesters};

  std::vector<std::thread> threads;
  for (std::uint32_t r = 0; r < kResponders; ++r) {
    threads.emplace_back([&, r] {
      DataPlane plane = bus.plane(kReceiverType, r);
      LaneCursor taking{plane.lane(kCommandLane)};
      LaneCursor answering{plane.lane(kFirstSendLane)};
      for (;;) {
        const TakeOutcome request = plane.take(taking, requests, requests.type_channel(), 0);
        if (request.status == TakeOutcomeStatus::empty) {
          if (asking.load(std::memory_order_acquire) == 0 || ledger.errors() != 0) return;
          std::this_thread::yield();
          continue;
        }
        if (request.status != TakeOutcomeStatus::ok) return ledger.error("take of a request failed");
        const Numbered asked = numbered_of(request.delivery.payload);
        if (!ledger.known(asked)) return ledger.error("a request that was never sent");
        for (;;) {
          const SendAttempt sent = send_one(plane, answering, replies, bytes_of(asked), asked.producer + 1);
          if (sent.ok()) break;
          if (sent.allocation != PoolStatus::exhausted && sent.result.status != SendStatus::queue_full) {
            return ledger.error("reply failed");
          }
          std::this_thread::yield();
        }
        plane.ack(request.delivery.lease);
      }
    });
  }
  for (std::uint32_t q = 0; q < kRequesters; ++q) {
    threads.emplace_back([&, q] {
      DataPlane plane = bus.plane(kSenderType, q);
      LaneCursor asking_lane{plane.lane(kFirstSendLane)};
      LaneCursor inbox{plane.lane(kReplyLane)};
      Channel& mine = *replies.reply_channel(q);
      std::uint32_t asked = 0, answered = 0;
      while (answered < per_requester && ledger.errors() == 0) {
        if (asked < per_requester && asked - answered < kWindow &&
            send_one(plane, asking_lane, requests, bytes_of(Numbered{q, asked})).ok()) {
          ++asked;
        }
        const TakeOutcome reply = plane.take(inbox, replies, mine, 0);
        if (reply.status == TakeOutcomeStatus::empty) {
          std::this_thread::yield();
          continue;
        }
        if (reply.status != TakeOutcomeStatus::ok) return ledger.error("take of a reply failed");
        const Numbered answer = numbered_of(reply.delivery.payload);
        if (answer.producer != q || !ledger.known(answer)) return ledger.error("someone else's reply");
        if (ledger.delivered(answer) != 0) return ledger.error("a reply twice");
        ledger.acked(answer);
        plane.ack(reply.delivery.lease);
        ++answered;
      }
      asking.fetch_sub(1, std::memory_order_release);
    });
  }
  join_all(threads);

  EXPECT_EQ(ledger.errors(), 0u);
  EXPECT_EQ(ledger.count_where([](std::uint32_t delivered, std::uint32_t) { return delivered != 1; }), 0u);
  expect_quiet(bus.memory());
}

}  // namespace
}  // namespace exobus::shm
