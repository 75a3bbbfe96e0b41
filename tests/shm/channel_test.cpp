// Unit tests of a channel on its own: order, back-pressure, laps, the claim/publish/take
// steps, the two halves each written by one side only, abandoned claims and their
// tombstones, recovery of a dead lane's half-done slots, what a hostile writer of either
// half can and cannot do, the sleep/wake pairing, and many threads at once.
//
// Each half lives in its own zeroed anonymous mapping, as a new memory object is, so that a
// test can map one half read-only the way the other side of a link maps it.
#include "exobus/shm/channel.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <new>
#include <thread>
#include <vector>

namespace exobus::shm {
namespace {

constexpr std::uint16_t kProducer = 1;
constexpr std::uint16_t kConsumer = 2;
constexpr std::uint16_t kDeadLane = 5;
// A lost wake-up shows as a hang that ctest's timeout fails; a shorter timeout checked
// against the clock would be a timing assertion.
constexpr std::chrono::hours kForever{1};

// One half of a link: a zeroed, page-aligned mapping of its own.
class Half {
 public:
  explicit Half(std::uint64_t bytes) : size_(round_to_pages(bytes)) {
    void* base = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) throw std::bad_alloc();
    base_ = static_cast<std::byte*>(base);
  }
  ~Half() { ::munmap(base_, size_); }
  Half(const Half&) = delete;
  Half& operator=(const Half&) = delete;

  std::byte* data() const { return base_; }
  std::size_t size() const { return size_; }
  void protect(int protection) const {
    if (::mprotect(base_, size_, protection) != 0) throw std::runtime_error("mprotect failed");
  }

 private:
  static std::size_t round_to_pages(std::uint64_t bytes) {
    const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    return static_cast<std::size_t>((bytes + page - 1) / page * page);
  }

  std::size_t size_;
  std::byte* base_ = nullptr;
};

// While it lives, `half` is mapped read-only, as the other side of a link maps it: any
// store to it, even a CAS that fails (x86 writes the old value back), ends the test with
// SIGSEGV.
class ReadOnly {
 public:
  explicit ReadOnly(const Half& half) : half_(half) { half_.protect(PROT_READ); }
  ~ReadOnly() { half_.protect(PROT_READ | PROT_WRITE); }
  ReadOnly(const ReadOnly&) = delete;
  ReadOnly& operator=(const ReadOnly&) = delete;

 private:
  const Half& half_;
};

// A channel over a producer half and a consumer half, laid out as link.hpp lays them out.
class SplitChannel {
 public:
  explicit SplitChannel(std::uint32_t capacity)
      : producer_half_(Channel::producer_bytes(capacity)), consumer_half_(Channel::consumer_bytes(capacity)) {
    channel_ = Channel(&tail(), &producer(0), &head(), &consumer(0), capacity);
  }

  Channel& channel() { return channel_; }
  ChannelTail& tail() { return *reinterpret_cast<ChannelTail*>(producer_half_.data()); }
  ChannelHead& head() { return *reinterpret_cast<ChannelHead*>(consumer_half_.data()); }
  ProducerSlot& producer(std::uint32_t index) {
    return reinterpret_cast<ProducerSlot*>(producer_half_.data() + sizeof(ChannelTail))[index];
  }
  ConsumerSlot& consumer(std::uint32_t index) {
    return reinterpret_cast<ConsumerSlot*>(consumer_half_.data() + sizeof(ChannelHead))[index];
  }
  const Half& producer_half() const { return producer_half_; }
  const Half& consumer_half() const { return consumer_half_; }

 private:
  Half producer_half_;
  Half consumer_half_;
  Channel channel_;
};

// Distinct, never null, and every field in use, so a mixed-up word shows.
MessageHandle handle_for(std::uint32_t n) { return MessageHandle(n, n % kMaxLinks, 1 + n % (kGenerationMask - 1)); }

// A producer's whole send: claim, then publish.
ClaimStatus send(Channel& channel, MessageHandle handle, std::uint16_t lane = kProducer) {
  const Claim claim = channel.claim(lane);
  if (claim.status == ClaimStatus::ok) channel.publish(claim.position, handle);
  return claim.status;
}

Taken take(Channel& channel, std::uint16_t lane = kConsumer) {
  return channel.take(lane, [](MessageHandle) {});
}

// A producer that dies after claiming its slot and before moving the tail past it.
void claim_and_die_before_moving_the_tail(Channel& channel, std::uint16_t lane) {
  arm_fault(FaultPoint::push_claimed, 1, FaultAction::throw_exception);
  EXPECT_THROW(channel.claim(lane), FaultInjected);
  disarm_fault();
}

// A consumer that dies at `point` of a take: the slot stays READING(lane).
void take_and_die(Channel& channel, std::uint16_t lane, FaultPoint point = FaultPoint::take_claimed) {
  arm_fault(point, 1, FaultAction::throw_exception);
  EXPECT_THROW(channel.take(lane, [](MessageHandle) {}), FaultInjected);
  disarm_fault();
}

// Wakes every sleeper, as a consumer that stops does: bump the signal, FUTEX_WAKE.
void wake_everyone(Channel& channel) {
  channel.signal().fetch_add(1, std::memory_order_release);
  futex_wake_all(channel.signal());
}

struct ChannelTest : ::testing::Test {
  SplitChannel memory{8};
  Channel& channel = memory.channel();
};

// --- claim, publish, take ---

TEST_F(ChannelTest, HandlesOfOneProducerAreTakenInPublishOrder) {
  for (std::uint32_t n = 0; n < 6; ++n) ASSERT_EQ(send(channel, handle_for(n)), ClaimStatus::ok);
  for (std::uint32_t n = 0; n < 6; ++n) {
    const Taken taken = take(channel);
    ASSERT_EQ(taken.status, TakeStatus::ok);
    EXPECT_EQ(taken.handle, handle_for(n));
    EXPECT_EQ(taken.position, n);
  }
}

TEST_F(ChannelTest, TakeOnAFreshChannelReportsEmptyWithoutRecordingALease) {
  int leases = 0;
  const Taken taken = channel.take(kConsumer, [&](MessageHandle) { ++leases; });
  EXPECT_EQ(taken.status, TakeStatus::empty);
  EXPECT_TRUE(taken.handle.is_null());
  EXPECT_EQ(leases, 0);
}

TEST_F(ChannelTest, TakeAfterEverythingWasTakenReportsEmpty) {
  send(channel, handle_for(1));
  ASSERT_EQ(take(channel).status, TakeStatus::ok);
  EXPECT_EQ(take(channel).status, TakeStatus::empty);
}

TEST_F(ChannelTest, ClaimedPositionIsNotTakenUntilItIsPublished) {
  const Claim claim = channel.claim(kProducer);
  ASSERT_EQ(claim.status, ClaimStatus::ok);
  EXPECT_EQ(take(channel).status, TakeStatus::empty);
  channel.publish(claim.position, handle_for(3));
  const Taken taken = take(channel);
  ASSERT_EQ(taken.status, TakeStatus::ok);
  EXPECT_EQ(taken.handle, handle_for(3));
}

TEST_F(ChannelTest, ClaimsOfTwoProducersGetSuccessivePositions) {
  const Claim first = channel.claim(kProducer);
  const Claim second = channel.claim(kProducer + 1);
  ASSERT_EQ(first.status, ClaimStatus::ok);
  ASSERT_EQ(second.status, ClaimStatus::ok);
  EXPECT_EQ(first.position, 0u);
  EXPECT_EQ(second.position, 1u);
}

TEST_F(ChannelTest, ClaimOnAFullChannelReportsFullAndLosesNothingQueued) {
  for (std::uint32_t n = 0; n < channel.capacity(); ++n) ASSERT_EQ(send(channel, handle_for(n)), ClaimStatus::ok);
  EXPECT_EQ(channel.claim(kProducer).status, ClaimStatus::full);
  EXPECT_EQ(channel.census().writing, 0u) << "a refused claim claimed a slot";
  for (std::uint32_t n = 0; n < channel.capacity(); ++n) {
    const Taken taken = take(channel);
    ASSERT_EQ(taken.status, TakeStatus::ok) << n;
    EXPECT_EQ(taken.handle, handle_for(n));
  }
  EXPECT_EQ(take(channel).status, TakeStatus::empty);
}

TEST_F(ChannelTest, ChannelFullOfUnpublishedClaimsReportsFull) {
  for (std::uint32_t n = 0; n < channel.capacity(); ++n) ASSERT_EQ(channel.claim(kProducer).status, ClaimStatus::ok);
  EXPECT_EQ(channel.claim(kProducer).status, ClaimStatus::full);
}

TEST_F(ChannelTest, FullChannelAcceptsAClaimAgainOnceOneHandleIsTaken) {
  for (std::uint32_t n = 0; n < channel.capacity(); ++n) send(channel, handle_for(n));
  ASSERT_EQ(channel.claim(kProducer).status, ClaimStatus::full);
  ASSERT_EQ(take(channel).status, TakeStatus::ok);
  EXPECT_EQ(send(channel, handle_for(99)), ClaimStatus::ok);
}

TEST(Channel, PositionsAndHandlesStayInOrderOverManyLaps) {
  SplitChannel memory(4);
  Channel& channel = memory.channel();
  // Three handles always in flight, so every lap meets a channel neither empty nor full.
  for (std::uint32_t n = 0; n < 3; ++n) ASSERT_EQ(send(channel, handle_for(n)), ClaimStatus::ok);
  for (std::uint32_t n = 0; n < 10'000; ++n) {
    ASSERT_EQ(send(channel, handle_for(n + 3)), ClaimStatus::ok) << n;
    const Taken taken = take(channel);
    ASSERT_EQ(taken.status, TakeStatus::ok) << n;
    ASSERT_EQ(taken.position, n);
    ASSERT_EQ(taken.handle, handle_for(n));
  }
  EXPECT_EQ(channel.depth(), 3u);
}

TEST(Channel, LapCounterWrapsRoundTwoToThe32WithoutStoppingTheChannel) {
  constexpr std::uint32_t kCapacity = 4;
  SplitChannel memory(kCapacity);
  // A channel that has run for 2^32 - 2 laps: every slot written and consumed at the lap
  // before, head and tail at the start of this one.
  constexpr std::uint32_t kLap = 0xfffffffe;
  const std::uint64_t start = std::uint64_t{kLap} * kCapacity;
  memory.tail().tail.store(start);
  memory.head().head.store(start);
  for (std::uint32_t index = 0; index < kCapacity; ++index) {
    memory.producer(index).state.store(ProducerWord{0, ProducerKind::full, kLap - 1}.encode());
    memory.consumer(index).state.store(ConsumerWord{0, ConsumerKind::idle, kLap}.encode());
  }
  Channel& channel = memory.channel();
  for (std::uint32_t n = 0; n < 4 * kCapacity; ++n) {
    ASSERT_EQ(send(channel, handle_for(n)), ClaimStatus::ok) << n;
    const Taken taken = take(channel);
    ASSERT_EQ(taken.status, TakeStatus::ok) << n;
    EXPECT_EQ(taken.position, start + n);
    EXPECT_EQ(taken.handle, handle_for(n));
  }
}

TEST(Channel, ClaimGivesThePositionTheHandleIsTakenFrom) {
  SplitChannel memory(4);
  Channel& channel = memory.channel();
  // Off position 0 and into the second lap, so the position is not an index by accident.
  for (std::uint32_t n = 0; n < 5; ++n) {
    send(channel, handle_for(n));
    take(channel);
  }
  const Claim claim = channel.claim(kProducer);
  ASSERT_EQ(claim.status, ClaimStatus::ok);
  channel.publish(claim.position, handle_for(7));
  const Taken taken = take(channel);
  ASSERT_EQ(taken.status, TakeStatus::ok);
  EXPECT_EQ(claim.position, 5u);
  EXPECT_EQ(taken.position, claim.position);
}

TEST_F(ChannelTest, RecordLeaseRunsOnceWithTheHandleWhileTheSlotIsStillReading) {
  send(channel, handle_for(3));
  int calls = 0;
  MessageHandle recorded;
  Channel::Census inside;
  const Taken taken = channel.take(kConsumer, [&](MessageHandle handle) {
    ++calls;
    recorded = handle;
    inside = channel.census();
  });
  ASSERT_EQ(taken.status, TakeStatus::ok);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(recorded, handle_for(3));
  EXPECT_EQ(inside.reading, 1u);
  EXPECT_EQ(channel.census().reading, 0u);
}

TEST(Channel, ProducerCannotReuseASlotWhoseMessageIsStillBeingRead) {
  SplitChannel memory(2);
  Channel& channel = memory.channel();
  send(channel, handle_for(1));
  send(channel, handle_for(2));
  ClaimStatus claimed_inside = ClaimStatus::ok;
  channel.take(kConsumer, [&](MessageHandle) {
    ASSERT_EQ(take(channel, kConsumer + 1).handle, handle_for(2));
    claimed_inside = channel.claim(kProducer).status;  // position 2: slot 0, still READING at lap 0
  });
  EXPECT_EQ(claimed_inside, ClaimStatus::full);
  EXPECT_EQ(send(channel, handle_for(4)), ClaimStatus::ok) << "free once the read is done";
}

TEST(Channel, ConsumerALapAheadOfASlowReaderFindsTheChannelEmpty) {
  SplitChannel memory(2);
  Channel& channel = memory.channel();
  send(channel, handle_for(1));
  send(channel, handle_for(2));
  TakeStatus seen_inside = TakeStatus::ok;
  bool looked_empty_inside = false;
  channel.take(kConsumer, [&](MessageHandle) {
    ASSERT_EQ(take(channel, kConsumer + 1).status, TakeStatus::ok);
    // The head is at position 2, slot 0, which the slow reader still holds at lap 0.
    seen_inside = take(channel, kConsumer + 1).status;
    looked_empty_inside = channel.looks_empty();
  });
  EXPECT_EQ(seen_inside, TakeStatus::empty);
  EXPECT_TRUE(looked_empty_inside);
}

// --- each half written by its own side only ---

TEST_F(ChannelTest, ProducerOperationsNeverWriteTheConsumerHalf) {
  send(channel, handle_for(1));
  take_and_die(channel, kDeadLane);  // slot 0 READING, for the producers' scans to pass over
  memory.head().sleepers.store(1);   // so that publishing wakes
  const ReadOnly sealed(memory.consumer_half());

  ASSERT_EQ(send(channel, handle_for(2)), ClaimStatus::ok);
  const Claim abandoned = channel.claim(kProducer);
  channel.abandon(abandoned.position, kProducer);
  const Claim dead = channel.claim(kDeadLane);
  EXPECT_EQ(channel.tombstone_writes_of(kDeadLane, 1), 1u);
  const Claim committed = channel.claim(kDeadLane);
  EXPECT_TRUE(channel.finish_claim(committed.position, kDeadLane, handle_for(3)));
  while (channel.claim(kProducer).status == ClaimStatus::ok) {
  }
  EXPECT_TRUE(channel.looks_full());
  EXPECT_EQ(channel.depth(), channel.capacity());
  EXPECT_EQ(channel.census().full, 2u);
  EXPECT_NE(dead.position, committed.position);
}

TEST_F(ChannelTest, ConsumerOperationsNeverWriteTheProducerHalf) {
  send(channel, handle_for(1));
  send(channel, handle_for(2));
  channel.abandon(channel.claim(kProducer).position, kProducer);
  send(channel, handle_for(3));
  const ReadOnly sealed(memory.producer_half());

  take_and_die(channel, kDeadLane);
  EXPECT_EQ(take(channel).handle, handle_for(2));
  EXPECT_EQ(take(channel).handle, handle_for(3)) << "past the tombstone";
  EXPECT_EQ(take(channel).status, TakeStatus::empty);
  EXPECT_TRUE(channel.looks_empty());
  const std::uint32_t signal = channel.begin_sleep();
  channel.end_sleep();
  EXPECT_EQ(channel.release_reads_of(kDeadLane, 1, [](std::uint16_t, MessageHandle) { return true; }), 1u);
  EXPECT_EQ(channel.depth(), 0u);
  EXPECT_EQ(signal, 0u);
}

// --- abandoned claims ---

TEST_F(ChannelTest, AbandonedClaimIsSkippedByConsumers) {
  send(channel, handle_for(1));
  const Claim claim = channel.claim(kProducer);
  send(channel, handle_for(3));
  channel.abandon(claim.position, kProducer);
  EXPECT_EQ(take(channel).handle, handle_for(1));
  const Taken next = take(channel);
  ASSERT_EQ(next.status, TakeStatus::ok);
  EXPECT_EQ(next.handle, handle_for(3));
  EXPECT_EQ(take(channel).status, TakeStatus::empty);
}

TEST_F(ChannelTest, AbandonByAnotherLaneChangesNothing) {
  const Claim claim = channel.claim(kProducer);
  channel.abandon(claim.position, kProducer + 1);
  EXPECT_EQ(channel.census().writing, 1u);
  EXPECT_EQ(channel.census().tombstone, 0u);
}

TEST_F(ChannelTest, AbandonOfAPublishedPositionChangesNothing) {
  const Claim claim = channel.claim(kProducer);
  channel.publish(claim.position, handle_for(1));
  channel.abandon(claim.position, kProducer);
  EXPECT_EQ(take(channel).handle, handle_for(1));
}

TEST_F(ChannelTest, AbandonOfTheSameSlotAtAnotherLapChangesNothing) {
  const Claim claim = channel.claim(kProducer);
  channel.abandon(claim.position + channel.capacity(), kProducer);
  EXPECT_EQ(channel.census().writing, 1u);
}

TEST_F(ChannelTest, SkippedTombstoneFreesItsSlotForTheNextLap) {
  channel.abandon(channel.claim(kProducer).position, kProducer);
  ASSERT_EQ(take(channel).status, TakeStatus::empty);
  for (std::uint32_t n = 0; n < channel.capacity(); ++n) ASSERT_EQ(send(channel, handle_for(n)), ClaimStatus::ok) << n;
  for (std::uint32_t n = 0; n < channel.capacity(); ++n) ASSERT_EQ(take(channel).handle, handle_for(n)) << n;
}

// --- a dead producer ---

TEST_F(ChannelTest, UnpublishedClaimOfADeadLaneStallsTheConsumersBehindIt) {
  ASSERT_EQ(channel.claim(kDeadLane).status, ClaimStatus::ok);  // and dies
  send(channel, handle_for(2));
  // The documented non-guarantee: a claim never published stalls the channel's consumers.
  EXPECT_EQ(take(channel).status, TakeStatus::empty);
  EXPECT_EQ(channel.census().writing, 1u);
}

TEST_F(ChannelTest, ClaimOfADeadLaneIsTombstonedAndSkippedByConsumers) {
  send(channel, handle_for(1));
  ASSERT_EQ(channel.claim(kDeadLane).status, ClaimStatus::ok);  // and dies
  send(channel, handle_for(3));
  ASSERT_EQ(take(channel).handle, handle_for(1));

  EXPECT_EQ(channel.tombstone_writes_of(kDeadLane, 1), 1u);
  EXPECT_EQ(channel.census().tombstone, 1u);
  const Taken next = take(channel);
  ASSERT_EQ(next.status, TakeStatus::ok);
  EXPECT_EQ(next.handle, handle_for(3));
  EXPECT_EQ(take(channel).status, TakeStatus::empty);
  EXPECT_EQ(channel.census().free, channel.capacity()) << "the consumer that skipped the tombstone freed it";
}

TEST_F(ChannelTest, DeathBetweenClaimingAndMovingTheTailBlocksNoOtherProducer) {
  claim_and_die_before_moving_the_tail(channel, kDeadLane);
  ASSERT_EQ(memory.tail().tail.load(), 0u);
  const Claim next = channel.claim(kProducer);
  ASSERT_EQ(next.status, ClaimStatus::ok);
  EXPECT_EQ(next.position, 1u) << "the claim helped the tail past the dead lane's slot";
  channel.publish(next.position, handle_for(2));
  channel.tombstone_writes_of(kDeadLane, 1);
  EXPECT_EQ(take(channel).handle, handle_for(2));
}

TEST_F(ChannelTest, TombstoningTouchesOnlyTheDeadInstancesLanes) {
  channel.claim(kDeadLane);
  channel.claim(kDeadLane + 2);
  channel.claim(kDeadLane - 1);
  // Lanes kDeadLane and kDeadLane + 1 belong to the dead instance.
  EXPECT_EQ(channel.tombstone_writes_of(kDeadLane, 2), 1u);
  const Channel::Census census = channel.census();
  EXPECT_EQ(census.tombstone, 1u);
  EXPECT_EQ(census.writing, 2u);
}

TEST_F(ChannelTest, TombstoningLeavesPublishedSlotsOfTheDeadLaneQueued) {
  send(channel, handle_for(1), kDeadLane);
  EXPECT_EQ(channel.tombstone_writes_of(kDeadLane, 1), 0u);
  EXPECT_EQ(take(channel).handle, handle_for(1));
}

TEST_F(ChannelTest, FinishClaimPublishesTheCommittedSendOfADeadLane) {
  const Claim claim = channel.claim(kDeadLane);  // a committed send, and the lane dies
  EXPECT_TRUE(channel.finish_claim(claim.position, kDeadLane, handle_for(4)));
  const Taken taken = take(channel);
  ASSERT_EQ(taken.status, TakeStatus::ok);
  EXPECT_EQ(taken.handle, handle_for(4));
}

TEST_F(ChannelTest, FinishClaimOfAnotherLanesClaimChangesNothing) {
  const Claim claim = channel.claim(kProducer);
  EXPECT_FALSE(channel.finish_claim(claim.position, kDeadLane, handle_for(4)));
  EXPECT_EQ(channel.census().writing, 1u);
  channel.publish(claim.position, handle_for(1));
  EXPECT_EQ(take(channel).handle, handle_for(1));
}

TEST_F(ChannelTest, FinishClaimOfATombstonedOrPublishedClaimChangesNothing) {
  const Claim tombstoned = channel.claim(kDeadLane);
  channel.tombstone_writes_of(kDeadLane, 1);
  const Claim published = channel.claim(kDeadLane);
  channel.publish(published.position, handle_for(1));
  EXPECT_FALSE(channel.finish_claim(tombstoned.position, kDeadLane, handle_for(8)));
  EXPECT_FALSE(channel.finish_claim(published.position, kDeadLane, handle_for(9)));
  EXPECT_EQ(take(channel).handle, handle_for(1));
  EXPECT_EQ(take(channel).status, TakeStatus::empty);
}

// --- a dead consumer ---

TEST_F(ChannelTest, DeathOfAConsumerAfterClaimingBlocksNoOtherConsumer) {
  send(channel, handle_for(1));
  send(channel, handle_for(2));
  take_and_die(channel, kDeadLane);
  const Taken next = take(channel);
  ASSERT_EQ(next.status, TakeStatus::ok);
  EXPECT_EQ(next.handle, handle_for(2));
}

TEST_F(ChannelTest, ReadLeftByADeadLaneIsResolvedWithItsHandleAndReleased) {
  send(channel, handle_for(1));
  take_and_die(channel, kDeadLane);
  ASSERT_EQ(channel.census().reading, 1u);

  std::vector<MessageHandle> resolved;
  std::uint16_t resolved_lane = 0;
  const std::uint32_t released = channel.release_reads_of(kDeadLane, 1, [&](std::uint16_t lane, MessageHandle handle) {
    resolved.push_back(handle);
    resolved_lane = lane;
    return true;
  });
  EXPECT_EQ(released, 1u);
  EXPECT_EQ(resolved, std::vector<MessageHandle>{handle_for(1)});
  EXPECT_EQ(resolved_lane, kDeadLane);
  EXPECT_EQ(channel.census().free, channel.capacity());
}

TEST_F(ChannelTest, DeathAfterRecordingTheLeaseLeavesTheSlotReadingForRecovery) {
  send(channel, handle_for(1));
  int leases = 0;
  arm_fault(FaultPoint::take_leased, 1, FaultAction::throw_exception);
  EXPECT_THROW(channel.take(kDeadLane, [&](MessageHandle) { ++leases; }), FaultInjected);
  disarm_fault();
  EXPECT_EQ(leases, 1);
  EXPECT_EQ(channel.census().reading, 1u);
  EXPECT_EQ(channel.release_reads_of(kDeadLane, 1, [](std::uint16_t, MessageHandle) { return true; }), 1u);
  EXPECT_EQ(channel.census().reading, 0u);
}

TEST_F(ChannelTest, ReleasedReadSlotServesTheNextLapAgain) {
  send(channel, handle_for(1));
  take_and_die(channel, kDeadLane);
  channel.release_reads_of(kDeadLane, 1, [](std::uint16_t, MessageHandle) { return true; });
  // A full lap of sends reaches the released slot again.
  for (std::uint32_t n = 0; n < channel.capacity(); ++n) {
    ASSERT_EQ(send(channel, handle_for(10 + n)), ClaimStatus::ok) << n;
  }
  for (std::uint32_t n = 0; n < channel.capacity(); ++n) ASSERT_EQ(take(channel).handle, handle_for(10 + n)) << n;
}

TEST_F(ChannelTest, UnresolvedReadStaysReadingForTheNextPass) {
  send(channel, handle_for(1));
  take_and_die(channel, kDeadLane);
  EXPECT_EQ(channel.release_reads_of(kDeadLane, 1, [](std::uint16_t, MessageHandle) { return false; }), 0u);
  EXPECT_EQ(channel.census().reading, 1u);
  EXPECT_EQ(channel.release_reads_of(kDeadLane, 1, [](std::uint16_t, MessageHandle) { return true; }), 1u);
  EXPECT_EQ(channel.census().reading, 0u);
}

TEST_F(ChannelTest, RecovererDyingMidReleaseLeavesTheReadForTheNextPass) {
  send(channel, handle_for(1));
  take_and_die(channel, kDeadLane);
  int resolved = 0;
  const auto resolve = [&](std::uint16_t, MessageHandle) {
    ++resolved;
    return true;
  };
  arm_fault(FaultPoint::recovery_step, 1, FaultAction::throw_exception);
  EXPECT_THROW(channel.release_reads_of(kDeadLane, 1, resolve), FaultInjected);
  disarm_fault();
  EXPECT_EQ(channel.census().reading, 1u);
  EXPECT_EQ(channel.release_reads_of(kDeadLane, 1, resolve), 1u);
  EXPECT_EQ(resolved, 2) << "resolved again by the next pass, never lost";
}

TEST_F(ChannelTest, ReleasingReadsSkipsOtherInstancesLanes) {
  send(channel, handle_for(1));
  take_and_die(channel, kDeadLane + 1);
  int resolved = 0;
  EXPECT_EQ(channel.release_reads_of(kDeadLane, 1,
                                     [&](std::uint16_t, MessageHandle) {
                                       ++resolved;
                                       return true;
                                     }),
            0u);
  EXPECT_EQ(resolved, 0);
  EXPECT_EQ(channel.census().reading, 1u);
}

// --- census and scans ---

TEST_F(ChannelTest, CensusCountsSlotsOfEveryKind) {
  send(channel, handle_for(1));
  send(channel, handle_for(2));
  take_and_die(channel, kDeadLane);  // position 0: READING
  channel.claim(6);                  // position 2: WRITING
  channel.claim(7);                  // position 3: WRITING, then TOMBSTONE
  channel.tombstone_writes_of(7, 1);
  memory.consumer(7).state.store(ConsumerWord{0, static_cast<ConsumerKind>(9), 0}.encode());
  memory.producer(6).state.store(ProducerWord{0, static_cast<ProducerKind>(9), 0}.encode());
  const Channel::Census census = channel.census();
  EXPECT_EQ(census.reading, 1u);
  EXPECT_EQ(census.full, 1u);
  EXPECT_EQ(census.writing, 1u);
  EXPECT_EQ(census.tombstone, 1u);
  EXPECT_EQ(census.corrupt, 2u);
  EXPECT_EQ(census.free, channel.capacity() - 6);
}

TEST_F(ChannelTest, CensusCountsConsumedSlotsAsFree) {
  send(channel, handle_for(1));
  channel.abandon(channel.claim(kProducer).position, kProducer);
  ASSERT_EQ(take(channel).status, TakeStatus::ok);
  ASSERT_EQ(take(channel).status, TakeStatus::empty);  // past the tombstone
  EXPECT_EQ(channel.census().free, channel.capacity());
}

TEST_F(ChannelTest, ForEachQueuedVisitsExactlyThePublishedUnconsumedHandles) {
  send(channel, handle_for(1));
  send(channel, handle_for(2));
  channel.claim(kDeadLane);
  take(channel);
  std::vector<MessageHandle> visited;
  channel.for_each_queued([&](MessageHandle handle) { visited.push_back(handle); });
  EXPECT_EQ(visited, std::vector<MessageHandle>{handle_for(2)});
}

// --- looks_empty, looks_full, depth ---

TEST_F(ChannelTest, FreshChannelLooksEmptyAndNotFull) {
  EXPECT_TRUE(channel.looks_empty());
  EXPECT_FALSE(channel.looks_full());
  EXPECT_EQ(channel.depth(), 0u);
}

TEST_F(ChannelTest, ChannelLooksFullExactlyWhenCapacityHandlesAreQueued) {
  for (std::uint32_t n = 0; n + 1 < channel.capacity(); ++n) send(channel, handle_for(n));
  EXPECT_FALSE(channel.looks_full());
  send(channel, handle_for(100));
  EXPECT_TRUE(channel.looks_full());
  take(channel);
  EXPECT_FALSE(channel.looks_full());
}

TEST_F(ChannelTest, ChannelStopsLookingEmptyWhenAHandleIsPublished) {
  const Claim claim = channel.claim(kProducer);
  EXPECT_TRUE(channel.looks_empty()) << "claimed, not published";
  channel.publish(claim.position, handle_for(1));
  EXPECT_FALSE(channel.looks_empty());
  take(channel);
  EXPECT_TRUE(channel.looks_empty());
}

TEST_F(ChannelTest, TombstoneAtTheHeadDoesNotLookEmptySoASleeperWakesToSkipIt) {
  channel.abandon(channel.claim(kProducer).position, kProducer);
  EXPECT_FALSE(channel.looks_empty());
}

TEST_F(ChannelTest, DepthIsClaimsMinusTakes) {
  for (std::uint32_t n = 0; n < 5; ++n) send(channel, handle_for(n));
  channel.claim(kProducer);
  take(channel);
  take(channel);
  EXPECT_EQ(channel.depth(), 4u);
}

// --- sleeping and waking ---

TEST_F(ChannelTest, BeginSleepCountsTheSleeperInAndReturnsTheSignal) {
  memory.tail().signal.store(41);
  EXPECT_EQ(channel.begin_sleep(), 41u);
  EXPECT_EQ(SleeperCount::get(memory.head().sleepers.load()), 1u);
  EXPECT_EQ(SleepsBegun::get(memory.head().sleepers.load()), 1u);
  channel.end_sleep();
  EXPECT_EQ(SleeperCount::get(memory.head().sleepers.load()), 0u);
  EXPECT_EQ(SleepsBegun::get(memory.head().sleepers.load()), 1u) << "sleeps begun only grow";
}

TEST_F(ChannelTest, ASleepIsWokenOnceNotOncePerPublish) {
  const std::uint32_t signal = channel.begin_sleep();
  for (std::uint32_t n = 0; n < 3; ++n) send(channel, handle_for(n));
  EXPECT_EQ(channel.signal().load(), signal + 1) << "one wake for the three publishes";
  channel.end_sleep();
  const std::uint32_t again = channel.begin_sleep();
  send(channel, handle_for(3));
  EXPECT_EQ(channel.signal().load(), again + 1) << "a new sleep is woken again";
  channel.end_sleep();
}

TEST_F(ChannelTest, ASleepBegunAfterAWakeIsWokenWhileAnEarlierSleeperStillWakes) {
  channel.begin_sleep();                 // the first consumer, woken but not yet out
  send(channel, handle_for(1));
  const std::uint32_t signal = channel.begin_sleep();  // a second consumer
  send(channel, handle_for(2));
  EXPECT_EQ(channel.signal().load(), signal + 1);
  channel.end_sleep();
  channel.end_sleep();
}

TEST_F(ChannelTest, PublishWithNobodyAsleepLeavesTheSignalAlone) {
  send(channel, handle_for(1));
  EXPECT_EQ(channel.signal().load(), 0u);
}

TEST_F(ChannelTest, PublishWithASleeperBumpsTheSignal) {
  const std::uint32_t signal = channel.begin_sleep();
  send(channel, handle_for(1));
  channel.end_sleep();
  EXPECT_NE(channel.signal().load(), signal);
}

TEST_F(ChannelTest, AbandonWithASleeperBumpsTheSignal) {
  const Claim claim = channel.claim(kProducer);
  const std::uint32_t signal = channel.begin_sleep();
  channel.abandon(claim.position, kProducer);
  channel.end_sleep();
  EXPECT_NE(channel.signal().load(), signal);
}

TEST_F(ChannelTest, TombstoningWithASleeperBumpsTheSignal) {
  channel.claim(kDeadLane);
  const std::uint32_t signal = channel.begin_sleep();
  channel.tombstone_writes_of(kDeadLane, 1);
  channel.end_sleep();
  EXPECT_NE(channel.signal().load(), signal);
}

TEST_F(ChannelTest, FinishClaimWithASleeperBumpsTheSignal) {
  const Claim claim = channel.claim(kDeadLane);
  const std::uint32_t signal = channel.begin_sleep();
  channel.finish_claim(claim.position, kDeadLane, handle_for(1));
  channel.end_sleep();
  EXPECT_NE(channel.signal().load(), signal);
}

TEST_F(ChannelTest, SleeperIsWokenByAPublishFromAnotherThread) {
  std::thread producer([&] {
    // Only once the sleeper has counted itself in: then the publish must wake it.
    while (SleeperCount::get(memory.head().sleepers.load()) == 0) std::this_thread::yield();
    send(channel, handle_for(1));
  });
  const std::uint32_t signal = channel.begin_sleep();
  if (channel.looks_empty()) futex_wait(channel.signal(), signal, kForever);
  channel.end_sleep();
  producer.join();
  EXPECT_EQ(take(channel).handle, handle_for(1));
}

// --- a hostile writer of the other half ---

// Words a hostile consumer could leave in a consumer slot of a fresh channel.
std::vector<std::uint64_t> garbage_consumer_words() {
  return {~std::uint64_t{0},
          ConsumerWord{0, static_cast<ConsumerKind>(7), 0}.encode(),
          ConsumerWord{0, ConsumerKind::idle, 7}.encode(),
          ConsumerWord{0, ConsumerKind::idle, 0xffffffff}.encode(),
          ConsumerWord{3, ConsumerKind::reading, 0}.encode(),
          ConsumerWord{3, ConsumerKind::reading, 0x80000000}.encode()};
}

TEST(Channel, ScribbledConsumerWordMakesClaimReportCorruptedNotLoop) {
  for (const std::uint64_t word : garbage_consumer_words()) {
    SCOPED_TRACE(word);
    SplitChannel fresh(8);
    fresh.consumer(0).state.store(word);
    EXPECT_EQ(fresh.channel().claim(kProducer).status, ClaimStatus::corrupted);
    EXPECT_EQ(fresh.channel().census().writing, 0u) << "nothing claimed over a word it cannot trust";
  }
}

TEST_F(ChannelTest, ScribbledConsumerWordOverAnUnconsumedSlotMakesClaimReportCorruptedNotFree) {
  for (std::uint32_t n = 0; n < channel.capacity(); ++n) send(channel, handle_for(n));
  memory.consumer(0).state.store(ConsumerWord{0, ConsumerKind::idle, 5}.encode());
  EXPECT_EQ(channel.claim(kProducer).status, ClaimStatus::corrupted);
}

TEST_F(ChannelTest, ConsumerHalfFullOfGarbageLeavesEveryProducerCallReturning) {
  send(channel, handle_for(1));
  const Claim claim = channel.claim(kProducer);
  channel.claim(kDeadLane);
  std::memset(memory.consumer_half().data(), 0xab, memory.consumer_half().size());

  // Positions this process saw consumed before the scribble (the rest of that line of
  // consumer words) may still be claimed: a consumer's lies harm only what is sent to it.
  // Past them the garbage is reported, never waited on.
  ClaimStatus status = ClaimStatus::ok;
  for (std::uint32_t n = 0; n <= 8 && status == ClaimStatus::ok; ++n) status = channel.claim(kProducer).status;
  EXPECT_EQ(status, ClaimStatus::corrupted);
  channel.publish(claim.position, handle_for(2));  // wakes the "sleepers" 0xabababab
  EXPECT_NE(channel.signal().load(), 0u);
  EXPECT_FALSE(channel.looks_full());
  EXPECT_LE(channel.depth(), channel.capacity());
  EXPECT_EQ(channel.tombstone_writes_of(kDeadLane, 1), 1u);
  EXPECT_EQ(channel.census().corrupt, channel.capacity());
}

TEST_F(ChannelTest, ProducerWordOfUnknownKindMakesTakeReportCorrupted) {
  memory.producer(0).state.store(ProducerWord{0, static_cast<ProducerKind>(9), 0}.encode());
  EXPECT_EQ(take(channel).status, TakeStatus::corrupted);
}

TEST_F(ChannelTest, ProducerWordLapsAheadMakesTakeReportCorrupted) {
  memory.producer(0).state.store(ProducerWord{0, ProducerKind::full, 3}.encode());
  int leases = 0;
  EXPECT_EQ(channel.take(kConsumer, [&](MessageHandle) { ++leases; }).status, TakeStatus::corrupted);
  EXPECT_EQ(leases, 0);
}

TEST_F(ChannelTest, ProducerHalfFullOfGarbageLeavesEveryConsumerCallReturning) {
  send(channel, handle_for(1));
  take_and_die(channel, kDeadLane);
  std::memset(memory.producer_half().data(), 0xcd, memory.producer_half().size());

  EXPECT_EQ(take(channel).status, TakeStatus::corrupted);
  channel.looks_empty();
  EXPECT_LE(channel.depth(), channel.capacity());
  EXPECT_EQ(channel.release_reads_of(kDeadLane, 1, [](std::uint16_t, MessageHandle) { return true; }), 1u)
      << "the consumer's own READING slot is still released";
  EXPECT_EQ(channel.census().corrupt, channel.capacity());
}

TEST_F(ChannelTest, HeadMovedLapsAheadMakesTakeReportCorrupted) {
  send(channel, handle_for(1));
  memory.head().head.store(std::uint64_t{1000} * channel.capacity());
  EXPECT_EQ(take(channel).status, TakeStatus::corrupted);
}

TEST(Channel, HeadMovedLapsBackMakesTakeReportCorruptedInsteadOfWalkingForward) {
  SplitChannel memory(4);
  Channel& channel = memory.channel();
  for (std::uint32_t n = 0; n < 3 * channel.capacity(); ++n) {
    send(channel, handle_for(n));
    take(channel);
  }
  memory.head().head.store(0);
  EXPECT_EQ(take(channel).status, TakeStatus::corrupted);
}

TEST_F(ChannelTest, TailMovedLapsAheadMakesClaimReportCorrupted) {
  memory.tail().tail.store(std::uint64_t{1000} * channel.capacity());
  EXPECT_EQ(channel.claim(kProducer).status, ClaimStatus::corrupted);
}

TEST(Channel, TailMovedLapsBackMakesClaimReportCorruptedInsteadOfWalkingForward) {
  SplitChannel memory(4);
  Channel& channel = memory.channel();
  for (std::uint32_t n = 0; n < 3 * channel.capacity(); ++n) {
    send(channel, handle_for(n));
    take(channel);
  }
  memory.tail().tail.store(0);
  EXPECT_EQ(channel.claim(kProducer).status, ClaimStatus::corrupted);
}

TEST_F(ChannelTest, DepthStaysBetweenZeroAndCapacityWhateverHeadAndTailSay) {
  send(channel, handle_for(1));
  memory.tail().tail.store(std::uint64_t{1} << 40);
  EXPECT_EQ(channel.depth(), channel.capacity());
  memory.head().head.store(~std::uint64_t{0});
  EXPECT_EQ(channel.depth(), 0u);
}

// --- many threads ---

// Starts `consumers` threads taking until every producer is done and the channel is empty,
// calling on_taken(consumer, handle) for each handle; a take that reports corruption counts
// in `corrupted` and stops its thread.
template <class OnTaken>
void start_consumers(Channel& channel, std::uint32_t consumers, const std::atomic<std::uint32_t>& producers_done,
                     std::uint32_t producers, std::atomic<std::uint32_t>& corrupted, std::vector<std::thread>& threads,
                     OnTaken on_taken) {
  for (std::uint32_t c = 0; c < consumers; ++c) {
    threads.emplace_back([&channel, &producers_done, &corrupted, producers, c, on_taken] {
      const auto lane = static_cast<std::uint16_t>(100 + c);
      for (;;) {
        // Read before taking: an empty channel after every producer finished is empty for good.
        const bool finished = producers_done.load(std::memory_order_acquire) == producers;
        const Taken taken = take(channel, lane);
        if (taken.status == TakeStatus::ok) {
          on_taken(c, taken.handle);
        } else if (taken.status == TakeStatus::corrupted) {
          corrupted.fetch_add(1);
          return;
        } else if (finished) {
          return;
        } else {
          std::this_thread::yield();
        }
      }
    });
  }
}

// A producer's loop: send `count` handles numbered from `first`, waiting out a full
// channel; abandons every claim whose number `abandon_if` picks instead of publishing it.
template <class AbandonIf>
void produce(Channel& channel, std::uint16_t lane, std::uint32_t first, std::uint32_t count,
             std::atomic<std::uint32_t>& corrupted, AbandonIf abandon_if) {
  for (std::uint32_t n = first; n < first + count; ++n) {
    Claim claim;
    while ((claim = channel.claim(lane)).status == ClaimStatus::full) std::this_thread::yield();
    if (claim.status != ClaimStatus::ok) {
      corrupted.fetch_add(1);
      return;
    }
    if (abandon_if(n)) {
      channel.abandon(claim.position, lane);
    } else {
      channel.publish(claim.position, handle_for(n));
    }
  }
}

TEST(ChannelThreads, EveryHandleOfFourProducersIsTakenExactlyOnceByFourConsumers) {
  constexpr std::uint32_t kProducers = 4, kConsumers = 4, kPerProducer = 50'000;
  constexpr std::uint32_t kTotal = kProducers * kPerProducer;
  // Small: producers meet a full channel, consumers contend for each slot, every slot runs many laps.
  SplitChannel memory(16);
  Channel& channel = memory.channel();
  std::vector<std::atomic<std::uint32_t>> times_taken(kTotal);
  std::atomic<std::uint32_t> producers_done{0}, corrupted{0}, foreign{0};

  std::vector<std::thread> threads;
  for (std::uint32_t p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      produce(channel, static_cast<std::uint16_t>(1 + p), p * kPerProducer, kPerProducer, corrupted,
              [](std::uint32_t) { return false; });
      producers_done.fetch_add(1, std::memory_order_release);
    });
  }
  start_consumers(channel, kConsumers, producers_done, kProducers, corrupted, threads,
                  [&](std::uint32_t, MessageHandle handle) {
                    if (handle.chunk() < kTotal && handle == handle_for(handle.chunk())) {
                      times_taken[handle.chunk()].fetch_add(1, std::memory_order_relaxed);
                    } else {
                      foreign.fetch_add(1);
                    }
                  });
  for (std::thread& thread : threads) thread.join();

  EXPECT_EQ(corrupted.load(), 0u);
  EXPECT_EQ(foreign.load(), 0u);
  std::uint32_t lost = 0, duplicated = 0;
  for (const auto& count : times_taken) {
    lost += count.load() == 0;
    duplicated += count.load() > 1;
  }
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(duplicated, 0u);
  EXPECT_EQ(channel.census().free, channel.capacity());
}

TEST(ChannelThreads, EachConsumerSeesEachProducersHandlesInPublishOrder) {
  constexpr std::uint32_t kProducers = 3, kConsumers = 3, kPerProducer = 20'000;
  SplitChannel memory(16);
  Channel& channel = memory.channel();
  std::atomic<std::uint32_t> producers_done{0}, corrupted{0};
  std::vector<std::vector<std::uint32_t>> seen(kConsumers);

  std::vector<std::thread> threads;
  for (std::uint32_t p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      produce(channel, static_cast<std::uint16_t>(1 + p), p * kPerProducer, kPerProducer, corrupted,
              [](std::uint32_t) { return false; });
      producers_done.fetch_add(1, std::memory_order_release);
    });
  }
  start_consumers(channel, kConsumers, producers_done, kProducers, corrupted, threads,
                  [&](std::uint32_t consumer, MessageHandle handle) { seen[consumer].push_back(handle.chunk()); });
  for (std::thread& thread : threads) thread.join();

  EXPECT_EQ(corrupted.load(), 0u);
  std::size_t total = 0;
  for (std::uint32_t c = 0; c < kConsumers; ++c) {
    std::vector<std::int64_t> last(kProducers, -1);
    for (const std::uint32_t n : seen[c]) {
      const std::uint32_t producer = n / kPerProducer;
      const std::int64_t sequence = n % kPerProducer;
      ASSERT_LT(producer, kProducers);
      ASSERT_GT(sequence, last[producer]) << "consumer " << c << ", producer " << producer;
      last[producer] = sequence;
    }
    total += seen[c].size();
  }
  EXPECT_EQ(total, std::size_t{kProducers} * kPerProducer);
}

TEST(ChannelThreads, AbandonedClaimsAmongManyProducersAreSkippedAndNothingPublishedIsLost) {
  constexpr std::uint32_t kProducers = 3, kConsumers = 3, kPerProducer = 30'000;
  constexpr std::uint32_t kTotal = kProducers * kPerProducer;
  SplitChannel memory(8);
  Channel& channel = memory.channel();
  const auto abandoned = [](std::uint32_t n) { return n % 5 == 2; };
  std::vector<std::atomic<std::uint32_t>> times_taken(kTotal);
  std::atomic<std::uint32_t> producers_done{0}, corrupted{0}, foreign{0};

  std::vector<std::thread> threads;
  for (std::uint32_t p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      produce(channel, static_cast<std::uint16_t>(1 + p), p * kPerProducer, kPerProducer, corrupted, abandoned);
      producers_done.fetch_add(1, std::memory_order_release);
    });
  }
  start_consumers(channel, kConsumers, producers_done, kProducers, corrupted, threads,
                  [&](std::uint32_t, MessageHandle handle) {
                    if (handle.chunk() < kTotal && handle == handle_for(handle.chunk())) {
                      times_taken[handle.chunk()].fetch_add(1, std::memory_order_relaxed);
                    } else {
                      foreign.fetch_add(1);
                    }
                  });
  for (std::thread& thread : threads) thread.join();

  EXPECT_EQ(corrupted.load(), 0u);
  EXPECT_EQ(foreign.load(), 0u);
  std::uint32_t wrong = 0;
  for (std::uint32_t n = 0; n < kTotal; ++n) wrong += times_taken[n].load() != (abandoned(n) ? 0u : 1u);
  EXPECT_EQ(wrong, 0u) << "handles taken other than once, or abandoned ones taken";
  EXPECT_EQ(channel.census().free, channel.capacity());
}

TEST(ChannelThreads, SleepingConsumersAreWokenForEveryHandle) {
  constexpr std::uint32_t kProducers = 2, kConsumers = 2, kPerProducer = 5'000;
  constexpr std::uint32_t kTotal = kProducers * kPerProducer;
  SplitChannel memory(8);
  Channel& channel = memory.channel();
  std::atomic<std::uint32_t> taken_count{0}, corrupted{0};
  std::atomic<bool> stopping{false};

  std::vector<std::thread> threads;
  for (std::uint32_t c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&, c] {
      const auto lane = static_cast<std::uint16_t>(100 + c);
      while (!stopping.load(std::memory_order_acquire)) {
        const Taken taken = take(channel, lane);
        if (taken.status == TakeStatus::ok) {
          taken_count.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        if (taken.status == TakeStatus::corrupted) {
          corrupted.fetch_add(1);
          return;
        }
        // Count in, read the signal, re-check, wait: a publish after the re-check wakes us.
        const std::uint32_t signal = channel.begin_sleep();
        if (channel.looks_empty() && !stopping.load(std::memory_order_acquire)) {
          futex_wait(channel.signal(), signal, kForever);
        }
        channel.end_sleep();
      }
    });
  }
  std::vector<std::thread> producers;
  for (std::uint32_t p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (std::uint32_t n = 0; n < kPerProducer; ++n) {
        // Bursts of one: consumers fall asleep between most handles.
        if (n % 64 == 0) std::this_thread::yield();
        produce(channel, static_cast<std::uint16_t>(1 + p), p * kPerProducer + n, 1, corrupted,
                [](std::uint32_t) { return false; });
      }
    });
  }
  for (std::thread& producer : producers) producer.join();
  // Every handle is taken without any wake but the producers' own: a lost one hangs here.
  while (taken_count.load() < kTotal && corrupted.load() == 0) std::this_thread::yield();
  stopping.store(true, std::memory_order_release);
  wake_everyone(channel);
  for (std::thread& thread : threads) thread.join();

  EXPECT_EQ(corrupted.load(), 0u);
  EXPECT_EQ(taken_count.load(), kTotal);
}

}  // namespace
}  // namespace exobus::shm
