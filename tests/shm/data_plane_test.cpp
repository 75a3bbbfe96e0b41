// Unit tests of an instance's message protocols over a bus's memory: allocate and publish
// (to one target or all-or-nothing to several), take (from a link's channels, the retry
// ring, the dead letters), ack, renew, release, reject, requeue, lease expiry, replies to
// one requester instance, refusal of forged handles, and the daemon's recovery of an
// instance that simply stopped (the crash tests kill them mid-step: crash_test.cpp).
#include "exobus/shm/data_plane.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "exobus/shm/recovery.hpp"
#include "scratch_bus.hpp"

namespace exobus::shm {
namespace {

using testing::bytes_of;
using testing::census_of;
using testing::kCommandLink;
using testing::kObserverLink;
using testing::kObserverType;
using testing::kReceiverType;
using testing::kReplyLink;
using testing::kSenderType;
using testing::ScratchBus;
using testing::ScratchOptions;
using testing::SendAttempt;
using testing::send_one;
using testing::send_to;
using testing::text_of;

// Takes one message that must be there.
Delivery take_one(DataPlane& plane, LaneCursor& cursor, Link& link, Channel& channel, std::uint32_t now = 0) {
  const TakeOutcome outcome = plane.take(cursor, link, channel, now);
  EXPECT_EQ(outcome.status, TakeOutcomeStatus::ok);
  return outcome.delivery;
}

Delivery take_retry_one(DataPlane& plane, LaneCursor& cursor, std::uint32_t now = 0) {
  const TakeOutcome outcome = plane.take_retry(cursor, now);
  EXPECT_EQ(outcome.status, TakeOutcomeStatus::ok);
  return outcome.delivery;
}

// A bus of two types: sender instance 0 sends commands on link 0, receiver instance 0
// takes them on its command lane.
struct DataPlaneTest : ::testing::Test {
  explicit DataPlaneTest(const ScratchOptions& options = {}) : bus(options, "data-plane") {}

  SendAttempt send(const std::string& text) { return send_one(sender, sending, commands, bytes_of(text)); }
  Delivery take() { return take_one(receiver, taking, commands, commands.type_channel()); }
  TakeOutcome try_take() { return receiver.take(taking, commands, commands.type_channel(), 0); }

  ScratchBus bus;
  DataPlane sender = bus.plane(kSenderType, 0);
  DataPlane receiver = bus.plane(kReceiverType, 0);
  LaneCursor sending{sender.lane(kFirstSendLane)};
  LaneCursor taking{receiver.lane(kCommandLane)};
  Link& commands = bus.link(kCommandLink);
  Link& replies = bus.link(kReplyLink);
};

// --- sending and taking ---

TEST_F(DataPlaneTest, SentMessageIsTakenWithItsBytesAndTheLinkItCameBy) {
  ASSERT_TRUE(send("hello").ok());
  const Delivery delivery = take();
  EXPECT_EQ(text_of(delivery.payload), "hello");
  EXPECT_EQ(delivery.link, &commands);
  EXPECT_FALSE(delivery.redelivered());
}

TEST_F(DataPlaneTest, SenderWritesTheMessageInPlaceInItsChunk) {
  const Allocation allocation = sender.allocate(commands, 8);
  ASSERT_EQ(allocation.status, PoolStatus::ok);
  std::memcpy(allocation.buffer.data(), "in place", 8);
  const Part part{{&commands, kTypeChannel}, allocation.handle, 8};
  ASSERT_EQ(sender.publish(sending, std::span(&part, 1)).status, SendStatus::ok);
  const Delivery delivery = take();
  EXPECT_EQ(delivery.handle, allocation.handle);
  EXPECT_EQ(text_of(delivery.payload), "in place");
}

TEST_F(DataPlaneTest, TakeFromAnEmptyChannelReportsEmpty) { EXPECT_EQ(try_take().status, TakeOutcomeStatus::empty); }

TEST_F(DataPlaneTest, AckFreesTheChunkAndTheLease) {
  ASSERT_TRUE(send("x").ok());
  const Delivery delivery = take();
  EXPECT_EQ(commands.pool().audit().published, 1u);
  EXPECT_EQ(census_of(bus.memory()).leases, 1u);
  EXPECT_EQ(receiver.ack(delivery.lease), LeaseStatus::ok);
  EXPECT_TRUE(census_of(bus.memory()).quiet()) << census_of(bus.memory()).describe();
}

TEST_F(DataPlaneTest, SecondAckOfTheSameLeaseIsLate) {
  ASSERT_TRUE(send("x").ok());
  const Delivery delivery = take();
  ASSERT_EQ(receiver.ack(delivery.lease), LeaseStatus::ok);
  EXPECT_EQ(receiver.ack(delivery.lease), LeaseStatus::late);
}

TEST_F(DataPlaneTest, MessagesOfOneSenderLaneArriveInOrder) {
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(send(std::to_string(i)).ok());
  for (int i = 0; i < 20; ++i) {
    const Delivery delivery = take();
    EXPECT_EQ(text_of(delivery.payload), std::to_string(i));
    receiver.ack(delivery.lease);
  }
}

TEST_F(DataPlaneTest, FullChannelRefusesTheSendAndLeavesTheChunkTheSenders) {
  const std::uint32_t capacity = commands.type_channel().capacity();
  for (std::uint32_t i = 0; i < capacity; ++i) ASSERT_TRUE(send("m").ok()) << i;
  const Allocation allocation = sender.allocate(commands, 1);
  ASSERT_EQ(allocation.status, PoolStatus::ok);
  const Part part{{&commands, kTypeChannel}, allocation.handle, 1};
  const SendResult full = sender.publish(sending, std::span(&part, 1));
  EXPECT_EQ(full.status, SendStatus::queue_full);
  EXPECT_EQ(full.failed_part, 0u);
  EXPECT_EQ(commands.pool().audit().allocated, 1u) << "the chunk is still the sender's, to retry or abandon";
  // Room again once one message is acknowledged: the same chunk goes out.
  receiver.ack(take().lease);
  EXPECT_EQ(sender.publish(sending, std::span(&part, 1)).status, SendStatus::ok);
  EXPECT_EQ(commands.pool().audit().allocated, 0u);
}

TEST_F(DataPlaneTest, AbandonedChunkGoesBackToThePool) {
  const Allocation allocation = sender.allocate(commands, 1);
  ASSERT_EQ(allocation.status, PoolStatus::ok);
  sender.abandon(commands, allocation.handle);
  const PoolAudit audit = commands.pool().audit();
  EXPECT_EQ(audit.free, audit.total);
}

TEST_F(DataPlaneTest, PayloadLargerThanTheLargestClassIsRefusedByTheAllocator) {
  EXPECT_EQ(sender.allocate(commands, commands.pool().largest_chunk() + 1).status, PoolStatus::too_large);
  EXPECT_EQ(sender.allocate(commands, commands.pool().largest_chunk()).status, PoolStatus::ok);
}

struct SmallPool : DataPlaneTest {
  static ScratchOptions options() {
    ScratchOptions options;
    options.size_classes = {{256, 4}, {4096, 2}};
    return options;
  }
  SmallPool() : DataPlaneTest(options()) {}
};

TEST_F(SmallPool, ExhaustedClassSpillsIntoTheNextLargerOneThenRunsOut) {
  for (int i = 0; i < 4; ++i) EXPECT_EQ(sender.allocate(commands, 10).buffer.size(), 256u) << i;
  for (int i = 0; i < 2; ++i) EXPECT_EQ(sender.allocate(commands, 10).buffer.size(), 4096u) << i;
  EXPECT_EQ(sender.allocate(commands, 10).status, PoolStatus::exhausted);
}

TEST_F(DataPlaneTest, PublishOfNoPartOrMoreThanMaxTargetsIsRefused) {
  EXPECT_EQ(sender.publish(sending, {}).status, SendStatus::too_many_targets);
  std::vector<Part> parts(kMaxTargets + 1, Part{{&commands, kTypeChannel}, {}, 0});
  EXPECT_EQ(sender.publish(sending, parts).status, SendStatus::too_many_targets);
  EXPECT_EQ(census_of(bus.memory()).writing + census_of(bus.memory()).tombstones, 0u);
}

TEST_F(DataPlaneTest, AnInstanceCannotPublishOnALinkFromAnotherType) {
  // The receiver has no business in link 0's producer half.
  LaneCursor cursor{receiver.lane(kFirstSendLane)};
  const Part part{{&commands, kTypeChannel}, MessageHandle(0, kCommandLink, 1), 1};
  EXPECT_EQ(receiver.publish(cursor, std::span(&part, 1)).status, SendStatus::corrupted);
  EXPECT_EQ(try_take().status, TakeOutcomeStatus::empty);
  EXPECT_EQ(census_of(bus.memory()).writing + census_of(bus.memory()).tombstones, 0u);
}

// --- fan-out over several links ---

struct FanOut : ::testing::Test {
  static BusShape shape() {
    BusShape shape = testing::three_type_shape();
    shape.links[kObserverLink].shape.channel_capacity = 4;  // the observer's queue is short
    return shape;
  }
  // Publishes "fan" to the receiver and the observer; the chunks stay allocated on failure.
  SendResult publish_fan(std::vector<Part>& parts) {
    for (Link* link : {&commands, &observed}) {
      const Allocation allocation = sender.allocate(*link, 3);
      EXPECT_EQ(allocation.status, PoolStatus::ok);
      std::memcpy(allocation.buffer.data(), "fan", 3);
      parts.push_back({{link, kTypeChannel}, allocation.handle, 3});
    }
    return sender.publish(sending, parts);
  }
  void fill_observer() {
    for (std::uint32_t i = 0; i < observed.type_channel().capacity(); ++i) {
      ASSERT_TRUE(send_one(sender, sending, observed, bytes_of("filler")).ok());
    }
  }

  ScratchBus bus{shape(), "fan-out"};
  DataPlane sender = bus.plane(kSenderType, 0);
  DataPlane receiver = bus.plane(kReceiverType, 0);
  DataPlane observer = bus.plane(kObserverType, 0);
  LaneCursor sending{sender.lane(kFirstSendLane)};
  LaneCursor receiving{receiver.lane(kCommandLane)};
  LaneCursor observing{observer.lane(kCommandLane)};
  Link& commands = bus.link(kCommandLink);
  Link& observed = bus.link(kObserverLink);
};

TEST_F(FanOut, EveryTargetTypeGetsItsOwnCopyOnce) {
  std::vector<Part> parts;
  ASSERT_EQ(publish_fan(parts).status, SendStatus::ok);
  const Delivery to_receiver = take_one(receiver, receiving, commands, commands.type_channel());
  const Delivery to_observer = take_one(observer, observing, observed, observed.type_channel());
  EXPECT_EQ(text_of(to_receiver.payload), "fan");
  EXPECT_EQ(text_of(to_observer.payload), "fan");
  EXPECT_EQ(to_receiver.link, &commands);
  EXPECT_EQ(to_observer.link, &observed);
  EXPECT_EQ(receiver.take(receiving, commands, commands.type_channel(), 0).status, TakeOutcomeStatus::empty);
  EXPECT_EQ(observer.take(observing, observed, observed.type_channel(), 0).status, TakeOutcomeStatus::empty);
  // Each type acknowledges its own copy.
  receiver.ack(to_receiver.lease);
  EXPECT_EQ(commands.pool().audit().published, 0u);
  EXPECT_EQ(observed.pool().audit().published, 1u);
  observer.ack(to_observer.lease);
  EXPECT_TRUE(census_of(bus.memory()).quiet()) << census_of(bus.memory()).describe();
}

TEST_F(FanOut, OneFullTargetRefusesTheSendAndNobodyReceivesIt) {
  fill_observer();
  std::vector<Part> parts;
  const SendResult refused = publish_fan(parts);
  EXPECT_EQ(refused.status, SendStatus::queue_full);
  EXPECT_EQ(refused.failed_part, 1u);
  // The receiver's claim became a tombstone: it never sees the message.
  EXPECT_EQ(commands.type_channel().census().tombstone, 1u);
  EXPECT_EQ(receiver.take(receiving, commands, commands.type_channel(), 0).status, TakeOutcomeStatus::empty);
  for (std::uint32_t i = 0; i < observed.type_channel().capacity(); ++i) {
    const Delivery filler = take_one(observer, observing, observed, observed.type_channel());
    EXPECT_EQ(text_of(filler.payload), "filler");
    observer.ack(filler.lease);
  }
  EXPECT_EQ(observer.take(observing, observed, observed.type_channel(), 0).status, TakeOutcomeStatus::empty);
  // Both chunks are still the sender's.
  EXPECT_EQ(commands.pool().audit().allocated, 1u);
  EXPECT_EQ(observed.pool().audit().allocated, 1u);
  for (const Part& part : parts) sender.abandon(*part.to.link, part.handle);
  EXPECT_TRUE(census_of(bus.memory()).quiet()) << census_of(bus.memory()).describe();
}

TEST_F(FanOut, ASendRefusedByAFullTargetGoesThroughOnceThereIsRoom) {
  fill_observer();
  std::vector<Part> parts;
  ASSERT_EQ(publish_fan(parts).status, SendStatus::queue_full);
  observer.ack(take_one(observer, observing, observed, observed.type_channel()).lease);
  ASSERT_EQ(sender.publish(sending, parts).status, SendStatus::ok);
  // The receiver skips the tombstone of the refused attempt and gets the message once.
  const Delivery delivery = take_one(receiver, receiving, commands, commands.type_channel());
  EXPECT_EQ(text_of(delivery.payload), "fan");
  EXPECT_FALSE(delivery.redelivered());
  EXPECT_EQ(receiver.take(receiving, commands, commands.type_channel(), 0).status, TakeOutcomeStatus::empty);
}

TEST_F(FanOut, AFullFirstTargetLeavesNoClaimAnywhere) {
  for (std::uint32_t i = 0; i < commands.type_channel().capacity(); ++i) {
    ASSERT_TRUE(send_one(sender, sending, commands, bytes_of("filler")).ok());
  }
  std::vector<Part> parts;
  const SendResult refused = publish_fan(parts);
  EXPECT_EQ(refused.status, SendStatus::queue_full);
  EXPECT_EQ(refused.failed_part, 0u);
  const Channel::Census observer_slots = observed.type_channel().census();
  EXPECT_EQ(observer_slots.writing + observer_slots.tombstone + observer_slots.full, 0u);
  for (const Part& part : parts) sender.abandon(*part.to.link, part.handle);
}

// --- replies ---

// Sender instances 0 and 1 are requesters; the receiver answers each on link 1 (receiver
// to sender), in the reply channel of that requester's instance.
struct Replies : DataPlaneTest {
  SendAttempt reply_to(std::uint32_t requester, const std::string& text) {
    return send_one(receiver, replying, replies, bytes_of(text), requester + 1);
  }
  DataPlane requester_0 = bus.plane(kSenderType, 0);
  DataPlane requester_1 = bus.plane(kSenderType, 1);
  LaneCursor replying{receiver.lane(kFirstSendLane)};
  LaneCursor inbox_0{requester_0.lane(kReplyLane)};
  LaneCursor inbox_1{requester_1.lane(kReplyLane)};
};

TEST_F(Replies, AReplyReachesTheReplyChannelOfItsRequesterInstanceOnly) {
  ASSERT_TRUE(reply_to(1, "for one").ok());
  EXPECT_EQ(requester_0.take(inbox_0, replies, *replies.reply_channel(0), 0).status, TakeOutcomeStatus::empty);
  EXPECT_EQ(requester_0.take(inbox_0, replies, replies.type_channel(), 0).status, TakeOutcomeStatus::empty);
  const Delivery reply = take_one(requester_1, inbox_1, replies, *replies.reply_channel(1));
  EXPECT_EQ(text_of(reply.payload), "for one");
  EXPECT_EQ(reply.link, &replies);
  EXPECT_EQ(requester_1.ack(reply.lease), LeaseStatus::ok);
  EXPECT_TRUE(census_of(bus.memory()).quiet()) << census_of(bus.memory()).describe();
}

TEST_F(Replies, AReleasedReplyIsAcknowledgedNotRequeued) {
  ASSERT_TRUE(reply_to(1, "once").ok());
  const Delivery reply = take_one(requester_1, inbox_1, replies, *replies.reply_channel(1));
  EXPECT_EQ(requester_1.release(reply.lease, inbox_1), LeaseStatus::ok);
  EXPECT_EQ(requester_1.take_retry(inbox_1, 0).status, TakeOutcomeStatus::empty);
  EXPECT_TRUE(census_of(bus.memory()).quiet()) << census_of(bus.memory()).describe();
}

TEST_F(Replies, AReplyToAnInstanceSlotTheTypeDoesNotHaveIsRefused) {
  const std::uint32_t slots = replies.reply_channel_count();
  const SendAttempt sent = reply_to(slots, "nobody");
  EXPECT_EQ(sent.result.status, SendStatus::corrupted);
  EXPECT_TRUE(census_of(bus.memory()).quiet()) << census_of(bus.memory()).describe();
}

// --- forged handles ---

std::uint64_t unreadable_refusals(Link& link) {
  return link.counters().refused[static_cast<std::size_t>(RefusalReason::unreadable)].load();
}

// What a hostile sender can write in its own half: any handle in a slot it claimed.
void forge(Channel& channel, std::uint16_t lane, MessageHandle handle) {
  const Claim claim = channel.claim(lane);
  ASSERT_EQ(claim.status, ClaimStatus::ok);
  channel.publish(claim.position, handle);
}

TEST_F(DataPlaneTest, TakenHandleIntoAnotherLinkIsCountedRefusedAndDropped) {
  LaneCursor replying{receiver.lane(kFirstSendLane)};
  ASSERT_TRUE(send_one(receiver, replying, replies, bytes_of("elsewhere")).ok());  // chunk 0 of link 1
  forge(commands.type_channel(), sending.lane, MessageHandle(0, kReplyLink, 1));
  EXPECT_EQ(try_take().status, TakeOutcomeStatus::empty);
  EXPECT_EQ(unreadable_refusals(commands), 1u);
  EXPECT_EQ(commands.counters().refused_in_all(), 1u) << "counted under one reason only";
  EXPECT_EQ(bus.tenant(kReceiverType).instance(0).refused.load(), 1u);
  EXPECT_EQ(replies.counters().refused_in_all(), 0u);
  EXPECT_EQ(census_of(bus.memory()).leases, 0u) << "the lease taken for it is freed";
  EXPECT_EQ(replies.pool().audit().published, 1u) << "the other link's message is untouched";
}

struct OneChunk : DataPlaneTest {
  static ScratchOptions options() {
    ScratchOptions options;
    options.size_classes = {{256, 1}};  // every message reuses the one chunk
    return options;
  }
  OneChunk() : DataPlaneTest(options()) {}
};

TEST_F(OneChunk, TakenHandleOfAStaleGenerationIsCountedRefusedAndDropped) {
  ASSERT_TRUE(send("first").ok());
  const Delivery first = take();
  receiver.ack(first.lease);
  ASSERT_TRUE(send("second").ok());  // the chunk again, a new generation
  forge(commands.type_channel(), sending.lane, first.handle);
  const Delivery second = take();
  EXPECT_EQ(text_of(second.payload), "second");
  EXPECT_EQ(try_take().status, TakeOutcomeStatus::empty);
  EXPECT_EQ(unreadable_refusals(commands), 1u);
  EXPECT_EQ(receiver.ack(second.lease), LeaseStatus::ok) << "the live message is unharmed";
  EXPECT_TRUE(census_of(bus.memory()).quiet()) << census_of(bus.memory()).describe();
}

// A consumer stopped past its deadline may wake up to a chunk that holds another message
// by now: intact(), asked after reading, tells it to drop what it read.
TEST_F(OneChunk, ReaderWhoseLeaseWasLostSeesItsChunkReusedThroughIntact) {
  ASSERT_TRUE(send("first").ok());
  const Delivery stale = take();  // deadline 1000
  EXPECT_EQ(text_of(stale.payload), "first");
  EXPECT_TRUE(DataPlane::intact(stale));
  ASSERT_EQ(Recovery(bus.memory()).reclaim_expired(1000).leases_requeued, 1u);

  DataPlane other = bus.plane(kReceiverType, 1);
  LaneCursor other_lane{other.lane(kCommandLane)};
  const Delivery copy = take_retry_one(other, other_lane, 1000);
  ASSERT_EQ(other.ack(copy.lease), LeaseStatus::ok);
  EXPECT_TRUE(DataPlane::intact(stale)) << "freed, not yet rewritten: still the first message";
  ASSERT_TRUE(send("second").ok());

  EXPECT_EQ(text_of(stale.payload), "secon") << "the hazard: its view shows the new message";
  EXPECT_FALSE(DataPlane::intact(stale));
  EXPECT_EQ(receiver.ack(stale.lease), LeaseStatus::late) << "and the late ack harms nothing";
  const Delivery second = take_one(other, other_lane, commands, commands.type_channel(), 1000);
  EXPECT_FALSE(second.redelivered());
  EXPECT_TRUE(DataPlane::intact(second));
  EXPECT_EQ(other.ack(second.lease), LeaseStatus::ok);
}

// --- leases: release, reject, renew, expiry ---

TEST_F(DataPlaneTest, ReleasedMessageIsRedeliveredFlaggedThroughTheRetryRing) {
  ASSERT_TRUE(send("again").ok());
  const Delivery first = take();
  ASSERT_EQ(receiver.release(first.lease, taking), LeaseStatus::ok);
  EXPECT_EQ(try_take().status, TakeOutcomeStatus::empty);
  const Delivery second = take_retry_one(receiver, taking);
  EXPECT_EQ(text_of(second.payload), "again");
  EXPECT_EQ(second.deliveries, 1);
  EXPECT_EQ(second.link, &commands);
  EXPECT_EQ(receiver.ack(first.lease), LeaseStatus::late);
  EXPECT_EQ(receiver.ack(second.lease), LeaseStatus::ok);
  EXPECT_TRUE(census_of(bus.memory()).quiet()) << census_of(bus.memory()).describe();
}

TEST_F(DataPlaneTest, SecondReleaseOfTheSameLeaseIsLate) {
  ASSERT_TRUE(send("x").ok());
  const Delivery delivery = take();
  ASSERT_EQ(receiver.release(delivery.lease, taking), LeaseStatus::ok);
  EXPECT_EQ(receiver.release(delivery.lease, taking), LeaseStatus::late);
  EXPECT_EQ(census_of(bus.memory()).retry_queued, 1u) << "one copy, not two";
}

TEST_F(DataPlaneTest, MessageReachingTheDeliveryLimitGoesToTheDeadLetters) {
  ASSERT_TRUE(send("poison").ok());
  Delivery delivery = take();
  for (std::uint32_t delivered = 1; delivered < 3; ++delivered) {  // delivery limit 3
    ASSERT_EQ(receiver.release(delivery.lease, taking), LeaseStatus::ok);
    delivery = take_retry_one(receiver, taking);
    EXPECT_EQ(delivery.deliveries, delivered);
  }
  ASSERT_EQ(receiver.release(delivery.lease, taking), LeaseStatus::ok);
  EXPECT_EQ(receiver.take_retry(taking, 0).status, TakeOutcomeStatus::empty);
  DataPlane daemon = bus.plane(kReceiverType, bus.tenant(kReceiverType).daemon_instance());
  LaneCursor daemon_lane{daemon.lane(kCommandLane)};
  const TakeOutcome dead = daemon.take_dead_letter(daemon_lane, 0);
  ASSERT_EQ(dead.status, TakeOutcomeStatus::ok);
  EXPECT_EQ(text_of(dead.delivery.payload), "poison");
  EXPECT_EQ(dead.delivery.deliveries, 3);
}

TEST_F(DataPlaneTest, RejectSendsStraightToTheDeadLetters) {
  ASSERT_TRUE(send("bad").ok());
  ASSERT_EQ(receiver.reject(take().lease, taking), LeaseStatus::ok);
  const testing::BusCensus census = census_of(bus.memory());
  EXPECT_EQ(census.retry_queued, 0u);
  EXPECT_EQ(census.dead_letters, 1u);
  EXPECT_EQ(census.chunks_published, 1u) << "a dead letter pins its chunk";
}

TEST_F(DataPlaneTest, RequeuedDeadLetterIsAFreshDeliveryThroughTheRetryRing) {
  ASSERT_TRUE(send("retry me").ok());
  ASSERT_EQ(receiver.reject(take().lease, taking), LeaseStatus::ok);
  DataPlane daemon = bus.plane(kReceiverType, bus.tenant(kReceiverType).daemon_instance());
  LaneCursor daemon_lane{daemon.lane(kCommandLane)};
  const TakeOutcome dead = daemon.take_dead_letter(daemon_lane, 0);
  ASSERT_EQ(dead.status, TakeOutcomeStatus::ok);
  ASSERT_EQ(daemon.requeue(dead.delivery.lease, daemon_lane), LeaseStatus::ok);
  const Delivery again = take_retry_one(receiver, taking);
  EXPECT_EQ(text_of(again.payload), "retry me");
  EXPECT_EQ(again.deliveries, 0);
  EXPECT_EQ(receiver.ack(again.lease), LeaseStatus::ok);
  EXPECT_TRUE(census_of(bus.memory()).quiet()) << census_of(bus.memory()).describe();
}

TEST_F(DataPlaneTest, ExpiredLeaseIsRequeuedAndTheLateAckIsHarmless) {
  ASSERT_TRUE(send("slow").ok());
  const Delivery slow = take_one(receiver, taking, commands, commands.type_channel(), 100);  // deadline 1100
  Recovery recovery(bus.memory());
  EXPECT_EQ(recovery.reclaim_expired(1099).leases_requeued, 0u);
  EXPECT_EQ(recovery.reclaim_expired(1100).leases_requeued, 1u);
  DataPlane other = bus.plane(kReceiverType, 1);
  LaneCursor other_lane{other.lane(kCommandLane)};
  const Delivery again = take_retry_one(other, other_lane, 1100);
  EXPECT_TRUE(again.redelivered());
  EXPECT_EQ(receiver.ack(slow.lease), LeaseStatus::late);
  EXPECT_EQ(other.ack(again.lease), LeaseStatus::ok);
  EXPECT_TRUE(census_of(bus.memory()).quiet()) << census_of(bus.memory()).describe();
}

// A release that finds the retry ring full keeps the message in its lease (RECLAIMING,
// no longer the consumer's); the daemon's expiry pass pushes it once the lease's deadline
// has passed and there is room.
TEST(DataPlaneFullRetryRing, ReleaseLeavesTheMessageToTheExpiryPass) {
  BusShape shape = testing::two_type_shape();
  shape.types[kReceiverType].shape.retry_capacity = 2;
  ScratchBus bus(shape, "full-retry");
  DataPlane sender = bus.plane(kSenderType, 0);
  DataPlane receiver = bus.plane(kReceiverType, 0);
  LaneCursor sending{sender.lane(kFirstSendLane)};
  LaneCursor taking{receiver.lane(kCommandLane)};
  Link& commands = bus.link(kCommandLink);
  std::vector<Delivery> taken;
  for (const char* text : {"a", "b", "c"}) {
    ASSERT_TRUE(send_one(sender, sending, commands, bytes_of(text)).ok());
    taken.push_back(take_one(receiver, taking, commands, commands.type_channel()));  // deadline 1000
  }
  ASSERT_EQ(receiver.release(taken[0].lease, taking), LeaseStatus::ok);
  ASSERT_EQ(receiver.release(taken[1].lease, taking), LeaseStatus::ok);
  EXPECT_EQ(receiver.release(taken[2].lease, taking), LeaseStatus::queue_full);
  EXPECT_EQ(receiver.ack(taken[2].lease), LeaseStatus::late) << "the lease is being reclaimed";
  receiver.ack(take_retry_one(receiver, taking, 0).lease);  // room for one

  Recovery recovery(bus.memory());
  EXPECT_EQ(recovery.reclaim_expired(999).leases_requeued, 0u);
  EXPECT_EQ(recovery.reclaim_expired(1000).leases_requeued, 1u);
  receiver.ack(take_retry_one(receiver, taking, 1000).lease);
  const Delivery last = take_retry_one(receiver, taking, 1000);
  EXPECT_EQ(text_of(last.payload), "c");
  EXPECT_TRUE(last.redelivered());
  receiver.ack(last.lease);
  EXPECT_TRUE(census_of(bus.memory()).quiet()) << census_of(bus.memory()).describe();
}

TEST_F(DataPlaneTest, RenewPushesTheDeadlineBack) {
  ASSERT_TRUE(send("long").ok());
  const Delivery delivery = take();  // deadline 1000
  ASSERT_EQ(receiver.renew(delivery.lease, 900), LeaseStatus::ok);  // deadline 1900
  EXPECT_EQ(Recovery(bus.memory()).reclaim_expired(1500).leases_requeued, 0u);
  EXPECT_EQ(receiver.ack(delivery.lease), LeaseStatus::ok);
}

TEST_F(DataPlaneTest, RenewOfALeaseNoLongerHeldIsLate) {
  ASSERT_TRUE(send("gone").ok());
  const Delivery delivery = take();
  ASSERT_EQ(receiver.ack(delivery.lease), LeaseStatus::ok);
  EXPECT_EQ(receiver.renew(delivery.lease, 0), LeaseStatus::late);
}

TEST_F(DataPlaneTest, PrefetchLimitStopsTakingAndLeavesTheRestQueued) {
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(send("m").ok());
  for (int i = 0; i < 32; ++i) take();  // 32 leases per lane
  EXPECT_EQ(try_take().status, TakeOutcomeStatus::no_free_lease);
  EXPECT_EQ(census_of(bus.memory()).queued, 8u);
}

TEST_F(DataPlaneTest, LeaseTokenOfALaneOrEntryOutOfRangeIsLate) {
  EXPECT_EQ(receiver.ack({0xffff, 0, 0}), LeaseStatus::late);
  EXPECT_EQ(receiver.ack({taking.lane, 99999, 0}), LeaseStatus::late);
  EXPECT_EQ(receiver.renew({0xffff, 0, 0}, 0), LeaseStatus::late);
  EXPECT_EQ(receiver.release({taking.lane, 99999, 0}, taking), LeaseStatus::late);
}

// --- recovery of an instance that stopped (the daemon's half) ---

TEST_F(DataPlaneTest, RecoveryOfADeadReceiverRequeuesWhatItHeld) {
  ASSERT_TRUE(send("a").ok());
  ASSERT_TRUE(send("b").ok());
  take();
  take();  // held, never acknowledged: then the receiver dies
  const RecoveryReport report = Recovery(bus.memory()).recover_instance(kReceiverType, 0);
  EXPECT_EQ(report.leases_requeued, 2u);
  EXPECT_EQ(report.pending, 0u);
  DataPlane successor = bus.plane(kReceiverType, 1);
  LaneCursor lane{successor.lane(kCommandLane)};
  std::vector<std::string> redelivered;
  for (int i = 0; i < 2; ++i) {
    const Delivery delivery = take_retry_one(successor, lane);
    EXPECT_TRUE(delivery.redelivered());
    redelivered.push_back(text_of(delivery.payload));
    successor.ack(delivery.lease);
  }
  std::sort(redelivered.begin(), redelivered.end());
  EXPECT_EQ(redelivered, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(census_of(bus.memory()).quiet()) << census_of(bus.memory()).describe();
}

TEST_F(Replies, RecoveryOfADeadRequesterDropsTheRepliesWaitingForIt) {
  ASSERT_TRUE(reply_to(1, "too late").ok());
  ASSERT_TRUE(reply_to(1, "also too late").ok());
  ASSERT_TRUE(reply_to(0, "for the living").ok());
  const RecoveryReport report = Recovery(bus.memory()).recover_instance(kSenderType, 1);
  EXPECT_EQ(report.replies_dropped, 2u);
  EXPECT_EQ(replies.reply_channel(1)->depth(), 0u);
  // The next instance in slot 1 never sees them; instance 0's reply is untouched.
  EXPECT_EQ(requester_1.take(inbox_1, replies, *replies.reply_channel(1), 0).status, TakeOutcomeStatus::empty);
  const Delivery kept = take_one(requester_0, inbox_0, replies, *replies.reply_channel(0));
  EXPECT_EQ(text_of(kept.payload), "for the living");
  requester_0.ack(kept.lease);
  EXPECT_TRUE(census_of(bus.memory()).quiet()) << census_of(bus.memory()).describe();
}

TEST_F(DataPlaneTest, RecoveryOfADeadSenderFreesTheChunksItNeverPublished) {
  for (int i = 0; i < 3; ++i) ASSERT_EQ(sender.allocate(commands, 10).status, PoolStatus::ok);
  const Allocation other = bus.plane(kSenderType, 1).allocate(commands, 10);  // another instance's
  const RecoveryReport report = Recovery(bus.memory()).recover_instance(kSenderType, 0);
  EXPECT_EQ(report.chunks_reclaimed, 3u);
  EXPECT_EQ(commands.pool().audit().allocated, 1u) << "only the dead instance's chunks go";
  bus.plane(kSenderType, 1).abandon(commands, other.handle);
}

TEST_F(DataPlaneTest, RecoveryOfAnInstanceThatHeldNothingChangesNothing) {
  ASSERT_TRUE(send("queued").ok());
  const RecoveryReport report = Recovery(bus.memory()).recover_instance(kReceiverType, 0);
  EXPECT_EQ(report.leases_requeued + report.reads_resolved + report.tombstones + report.sends_completed +
                report.sends_undone + report.chunks_reclaimed + report.replies_dropped,
            0u);
  const Delivery delivery = take();
  EXPECT_FALSE(delivery.redelivered());
  EXPECT_EQ(text_of(delivery.payload), "queued");
}

}  // namespace
}  // namespace exobus::shm
