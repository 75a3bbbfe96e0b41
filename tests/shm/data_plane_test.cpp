// Unit tests of the message protocols: send, take, ack, release, reject, renew, expiry.
#include "exobus/shm/data_plane.hpp"

#include <gtest/gtest.h>

#include <cstring>

#include "scratch_segment.hpp"

namespace exobus::shm {
namespace {

using testing::bytes_of;
using testing::ScratchSegment;
using testing::small_spec;
using testing::text_of;

constexpr std::uint16_t kRing = 0;
const std::uint16_t kOneTarget[] = {kRing};

struct DataPlaneTest : ::testing::Test {
  ScratchSegment bus{small_spec()};
  DataPlane& plane = bus.plane();
  LaneCursor sender{plane.lane_of(1, 0)};
  LaneCursor receiver{plane.lane_of(2, 0)};
  LaneCursor daemon{plane.lane_of(0, 0)};

  Delivery take_one(LaneCursor& lane, std::uint16_t ring = kRing, std::uint32_t now = 0) {
    const TakeOutcome outcome = plane.take(lane, ring, now);
    EXPECT_EQ(outcome.status, TakeOutcomeStatus::ok);
    return outcome.delivery;
  }
};

TEST_F(DataPlaneTest, SentMessageIsTakenWithItsBytes) {
  ASSERT_EQ(plane.send(sender, bytes_of("hello"), kOneTarget).status, SendStatus::ok);
  const Delivery delivery = take_one(receiver);
  EXPECT_EQ(text_of(delivery.payload), "hello");
  EXPECT_FALSE(delivery.redelivered());
}

TEST_F(DataPlaneTest, TakeFromEmptyRingReportsEmpty) {
  EXPECT_EQ(plane.take(receiver, kRing, 0).status, TakeOutcomeStatus::empty);
}

TEST_F(DataPlaneTest, AckFreesTheChunk) {
  plane.send(sender, bytes_of("x"), kOneTarget);
  const Delivery delivery = take_one(receiver);
  EXPECT_EQ(plane.audit().pool.published, 1u);
  EXPECT_EQ(plane.ack(delivery.lease), LeaseStatus::ok);
  const BusAudit audit = plane.audit();
  EXPECT_EQ(audit.pool.published, 0u);
  EXPECT_EQ(audit.leased, 0u);
  EXPECT_EQ(audit.pool.free, audit.pool.total);
}

TEST_F(DataPlaneTest, SecondAckOfSameLeaseIsLate) {
  plane.send(sender, bytes_of("x"), kOneTarget);
  const Delivery delivery = take_one(receiver);
  ASSERT_EQ(plane.ack(delivery.lease), LeaseStatus::ok);
  EXPECT_EQ(plane.ack(delivery.lease), LeaseStatus::late);
}

TEST_F(DataPlaneTest, MessagesOfOneSenderArriveInOrder) {
  for (int i = 0; i < 20; ++i) plane.send(sender, bytes_of(std::to_string(i)), kOneTarget);
  for (int i = 0; i < 20; ++i) {
    const Delivery delivery = take_one(receiver);
    EXPECT_EQ(text_of(delivery.payload), std::to_string(i));
    plane.ack(delivery.lease);
  }
}

TEST_F(DataPlaneTest, FullRingGivesBackPressureAndLosesNothing) {
  const std::uint32_t capacity = plane.ring(kRing).capacity();
  for (std::uint32_t i = 0; i < capacity; ++i) {
    ASSERT_EQ(plane.send(sender, bytes_of("m"), kOneTarget).status, SendStatus::ok);
  }
  const SendResult full = plane.send(sender, bytes_of("m"), kOneTarget);
  EXPECT_EQ(full.status, SendStatus::queue_full);
  EXPECT_EQ(full.failed_ring, kRing);
  // The refused message's chunk went back to the pool.
  EXPECT_EQ(plane.audit().pool.published, capacity);
  const Delivery delivery = take_one(receiver);
  plane.ack(delivery.lease);
  EXPECT_EQ(plane.send(sender, bytes_of("m"), kOneTarget).status, SendStatus::ok);
}

TEST_F(DataPlaneTest, PayloadLargerThanLargestClassIsRefused) {
  const std::string huge(plane.largest_payload() + 1, 'x');
  EXPECT_EQ(plane.send(sender, bytes_of(huge), kOneTarget).status, SendStatus::too_large);
  EXPECT_EQ(plane.audit().pool.free, plane.audit().pool.total);
}

TEST_F(DataPlaneTest, ExhaustedClassSpillsIntoTheNextLargerOne) {
  // 512 small chunks, 16 large: fill the small class through releases that never ack.
  ScratchSegment wide(small_spec(1024));
  DataPlane& p = wide.plane();
  LaneCursor lane{p.lane_of(1, 0)};
  for (int i = 0; i < 512 + 16; ++i) {
    ASSERT_EQ(p.send(lane, bytes_of("m"), kOneTarget).status, SendStatus::ok) << i;
  }
  EXPECT_EQ(p.send(lane, bytes_of("m"), kOneTarget).status, SendStatus::pool_exhausted);
}

TEST_F(DataPlaneTest, FanOutReachesEveryTargetAndFreesAfterAllAck) {
  ScratchSegment fan(small_spec(64, 3));
  DataPlane& p = fan.plane();
  LaneCursor lane{p.lane_of(1, 0)};
  const std::uint16_t targets[] = {0, 1, 2};
  ASSERT_EQ(p.send(lane, bytes_of("fan"), targets).status, SendStatus::ok);
  std::vector<Delivery> deliveries;
  for (std::uint16_t ring : targets) {
    LaneCursor consumer{p.lane_of(2 + ring, 0)};
    const TakeOutcome outcome = p.take(consumer, ring, 0);
    ASSERT_EQ(outcome.status, TakeOutcomeStatus::ok);
    EXPECT_EQ(text_of(outcome.delivery.payload), "fan");
    deliveries.push_back(outcome.delivery);
  }
  EXPECT_EQ(p.audit().pool.published, 1u);  // one chunk, three handles
  p.ack(deliveries[0].lease);
  p.ack(deliveries[1].lease);
  EXPECT_EQ(p.audit().pool.published, 1u);
  p.ack(deliveries[2].lease);
  EXPECT_EQ(p.audit().pool.published, 0u);
}

TEST_F(DataPlaneTest, FanOutToAFullTypeFailsBeforeAnyTargetHasIt) {
  ScratchSegment fan(small_spec(2, 2));
  DataPlane& p = fan.plane();
  LaneCursor lane{p.lane_of(1, 0)};
  const std::uint16_t second[] = {1};
  p.send(lane, bytes_of("a"), second);
  p.send(lane, bytes_of("b"), second);
  const std::uint16_t both[] = {0, 1};
  const SendResult result = p.send(lane, bytes_of("c"), both);
  EXPECT_EQ(result.status, SendStatus::queue_full);
  EXPECT_EQ(result.failed_ring, 1);
  EXPECT_EQ(p.ring(0).depth(), 0u);
}

TEST_F(DataPlaneTest, ReleasedMessageIsRedeliveredFlagged) {
  plane.send(sender, bytes_of("again"), kOneTarget);
  const Delivery first = take_one(receiver);
  ASSERT_EQ(plane.release(first.lease, receiver), LeaseStatus::ok);
  const Delivery second = take_one(receiver);
  EXPECT_EQ(text_of(second.payload), "again");
  EXPECT_TRUE(second.redelivered());
  EXPECT_EQ(second.deliveries, 1);
  EXPECT_EQ(plane.ack(first.lease), LeaseStatus::late);
  EXPECT_EQ(plane.ack(second.lease), LeaseStatus::ok);
  EXPECT_EQ(plane.audit().pool.published, 0u);
}

TEST_F(DataPlaneTest, MessageReachingDeliveryLimitGoesToDeadLetters) {
  LayoutSpec spec = small_spec(64, 2);
  spec.rings[0].dead_letter_ring = 1;  // delivery limit 3
  ScratchSegment dl(spec);
  DataPlane& p = dl.plane();
  LaneCursor lane{p.lane_of(1, 0)};
  LaneCursor consumer{p.lane_of(2, 0)};
  p.send(lane, bytes_of("poison"), kOneTarget);
  for (int delivery = 0; delivery < 3; ++delivery) {
    const TakeOutcome outcome = p.take(consumer, 0, 0);
    ASSERT_EQ(outcome.status, TakeOutcomeStatus::ok) << delivery;
    p.release(outcome.delivery.lease, consumer);
  }
  EXPECT_EQ(p.take(consumer, 0, 0).status, TakeOutcomeStatus::empty);
  const TakeOutcome dead = p.take(consumer, 1, 0);
  ASSERT_EQ(dead.status, TakeOutcomeStatus::ok);
  EXPECT_EQ(text_of(dead.delivery.payload), "poison");
  EXPECT_EQ(dead.delivery.deliveries, 3);
}

TEST_F(DataPlaneTest, RejectSendsStraightToDeadLetters) {
  LayoutSpec spec = small_spec(64, 2);
  spec.rings[0].dead_letter_ring = 1;
  ScratchSegment dl(spec);
  DataPlane& p = dl.plane();
  LaneCursor lane{p.lane_of(1, 0)};
  p.send(lane, bytes_of("bad"), kOneTarget);
  const TakeOutcome outcome = p.take(lane, 0, 0);
  ASSERT_EQ(p.reject(outcome.delivery.lease, lane), LeaseStatus::ok);
  EXPECT_EQ(p.ring(0).depth(), 0u);
  EXPECT_EQ(p.ring(1).depth(), 1u);
}

TEST_F(DataPlaneTest, MovedDeadLetterIsAFreshDeliveryOnItsNewRing) {
  LayoutSpec spec = small_spec(64, 2);
  spec.rings[0].dead_letter_ring = 1;
  ScratchSegment dl(spec);
  DataPlane& p = dl.plane();
  LaneCursor lane{p.lane_of(1, 0)};
  p.send(lane, bytes_of("retry me"), kOneTarget);
  p.reject(p.take(lane, 0, 0).delivery.lease, lane);
  const TakeOutcome dead = p.take(lane, 1, 0);
  ASSERT_EQ(p.move(dead.delivery.lease, 0, lane), LeaseStatus::ok);
  const TakeOutcome again = p.take(lane, 0, 0);
  ASSERT_EQ(again.status, TakeOutcomeStatus::ok);
  EXPECT_EQ(text_of(again.delivery.payload), "retry me");
  EXPECT_EQ(again.delivery.deliveries, 0);
  EXPECT_EQ(p.ack(again.delivery.lease), LeaseStatus::ok);
  EXPECT_EQ(p.audit().pool.published, 0u);
}

TEST_F(DataPlaneTest, ExpiredLeaseIsRequeuedAndLateAckIsHarmless) {
  plane.send(sender, bytes_of("slow"), kOneTarget);
  const Delivery slow = take_one(receiver, kRing, 100);  // deadline 100 + 1000
  EXPECT_EQ(Recovery(plane, daemon).reclaim_expired(1099).leases_requeued, 0u);
  EXPECT_EQ(Recovery(plane, daemon).reclaim_expired(1100).leases_requeued, 1u);
  LaneCursor other{plane.lane_of(3, 0)};
  const Delivery again = take_one(other, kRing, 1100);
  EXPECT_TRUE(again.redelivered());
  // The slow consumer wakes up and acks: its lease is gone, nothing breaks.
  EXPECT_EQ(plane.ack(slow.lease), LeaseStatus::late);
  EXPECT_EQ(plane.ack(again.lease), LeaseStatus::ok);
  EXPECT_EQ(plane.audit().pool.published, 0u);
}

// A consumer stopped past its deadline may wake up to a chunk that holds another message
// by now: intact(), asked after reading, tells it to drop what it read.
TEST(DataPlaneReuse, ReaderWhoseLeaseWasLostSeesItsChunkReusedThroughIntact) {
  LayoutSpec spec = small_spec();
  spec.size_classes = {{256, 1, 0, 0, 0}};  // one chunk: the next message must reuse it
  ScratchSegment bus(spec);
  DataPlane& plane = bus.plane();
  LaneCursor sender{plane.lane_of(1, 0)}, stopped{plane.lane_of(2, 0)}, other{plane.lane_of(3, 0)};
  LaneCursor daemon{plane.lane_of(0, 0)};
  ASSERT_EQ(plane.send(sender, bytes_of("first"), kOneTarget).status, SendStatus::ok);
  const Delivery stale = plane.take(stopped, kRing, 0).delivery;  // deadline 1000
  EXPECT_EQ(text_of(stale.payload), "first");
  EXPECT_TRUE(plane.intact(stale.handle));

  ASSERT_EQ(Recovery(plane, daemon).reclaim_expired(1000).leases_requeued, 1u);
  const Delivery copy = plane.take(other, kRing, 1000).delivery;
  ASSERT_EQ(plane.ack(copy.lease), LeaseStatus::ok);
  EXPECT_TRUE(plane.intact(stale.handle));  // freed, not yet rewritten: still "first"
  ASSERT_EQ(plane.send(sender, bytes_of("second"), kOneTarget).status, SendStatus::ok);

  EXPECT_EQ(text_of(stale.payload), "secon");  // the hazard: its view shows the new message
  EXPECT_FALSE(plane.intact(stale.handle));
  EXPECT_EQ(plane.ack(stale.lease), LeaseStatus::late);  // and the late ack harms nothing
  const Delivery second = plane.take(other, kRing, 1000).delivery;
  EXPECT_FALSE(second.redelivered());
  EXPECT_TRUE(plane.intact(second.handle));
  EXPECT_EQ(plane.ack(second.lease), LeaseStatus::ok);
}

TEST_F(DataPlaneTest, RenewPushesTheDeadlineBack) {
  plane.send(sender, bytes_of("long"), kOneTarget);
  const Delivery delivery = take_one(receiver, kRing, 0);
  ASSERT_EQ(plane.renew(delivery.lease, 900), LeaseStatus::ok);  // deadline 1900
  EXPECT_EQ(Recovery(plane, daemon).reclaim_expired(1500).leases_requeued, 0u);
  EXPECT_EQ(plane.ack(delivery.lease), LeaseStatus::ok);
}

TEST_F(DataPlaneTest, PrefetchLimitStopsTaking) {
  for (int i = 0; i < 40; ++i) plane.send(sender, bytes_of("m"), kOneTarget);
  for (int i = 0; i < 32; ++i) take_one(receiver);
  EXPECT_EQ(plane.take(receiver, kRing, 0).status, TakeOutcomeStatus::no_free_lease);
}

TEST_F(DataPlaneTest, LeaseTokenOfAnotherLaneOrEntryOutOfRangeIsLate) {
  EXPECT_EQ(plane.ack({0xffff, 0, 0}), LeaseStatus::late);
  EXPECT_EQ(plane.ack({receiver.lane, 99999, 0}), LeaseStatus::late);
}

TEST_F(DataPlaneTest, ZeroCopySendWritesInPlace) {
  const Allocation allocation = plane.allocate(sender, 64);
  ASSERT_EQ(allocation.status, PoolStatus::ok);
  std::memcpy(allocation.buffer.data(), "in place", 8);
  ASSERT_EQ(plane.publish(sender, allocation.handle, 8, kOneTarget).status, SendStatus::ok);
  EXPECT_EQ(text_of(take_one(receiver).payload), "in place");
}

}  // namespace
}  // namespace exobus::shm
