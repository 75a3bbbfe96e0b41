// Unit tests of the ready ring on its own: order, back-pressure, laps, the claim callbacks,
// recovery of a dead lane's half-done slots, refusal of corrupt positions, looks_empty,
// looks_full and depth, the sleep/wake pairing and many threads at once. The ring lives in
// ordinary heap memory: it only ever sees its two pointers, so no memory object is needed.
#include "exobus/shm/ready_ring.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
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

// The header and the slots in one zeroed, cache-line-aligned heap block, as in a segment.
class HeapRing {
 public:
  explicit HeapRing(std::uint32_t capacity)
      : memory_(static_cast<std::byte*>(std::aligned_alloc(64, bytes_for(capacity)))) {
    if (!memory_) throw std::bad_alloc();
    std::memset(memory_.get(), 0, bytes_for(capacity));
    header_ = reinterpret_cast<RingHeader*>(memory_.get());
    slots_ = reinterpret_cast<RingSlot*>(memory_.get() + sizeof(RingHeader));
    ReadyRing::initialise(header_, slots_, capacity);
    ring_ = ReadyRing(header_, slots_, capacity);
  }

  ReadyRing& ring() { return ring_; }
  RingHeader& header() { return *header_; }
  RingSlot& slot(std::uint32_t index) { return slots_[index]; }

 private:
  // aligned_alloc wants a size that is a multiple of the alignment.
  static std::size_t bytes_for(std::uint32_t capacity) {
    return (sizeof(RingHeader) + std::size_t{capacity} * sizeof(RingSlot) + 63) / 64 * 64;
  }
  struct Free {
    void operator()(std::byte* memory) const { std::free(memory); }
  };

  std::unique_ptr<std::byte, Free> memory_;
  RingHeader* header_ = nullptr;
  RingSlot* slots_ = nullptr;
  ReadyRing ring_;
};

// Distinct, never null, and every field in use, so a mixed-up word shows.
MessageHandle handle_for(std::uint32_t n) { return MessageHandle(n, n % kMaxLinks, 1 + n % (kGenerationMask - 1)); }

PushStatus push(ReadyRing& ring, MessageHandle handle, std::uint16_t lane = kProducer) {
  return ring.push(handle, 0, lane, [](std::uint64_t) {});
}

RingTaken take(ReadyRing& ring, std::uint16_t lane = kConsumer) {
  return ring.take(lane, [](MessageHandle, std::uint8_t) {});
}

// A producer that dies after claiming its slot and before publishing the handle: the slot
// stays WRITING(lane). Returns the claimed position.
std::uint64_t push_and_die(ReadyRing& ring, MessageHandle handle, std::uint16_t lane) {
  std::uint64_t claimed = ~std::uint64_t{0};
  arm_fault(FaultPoint::push_recorded, 1, FaultAction::throw_exception);
  EXPECT_THROW(ring.push(handle, 0, lane, [&](std::uint64_t position) { claimed = position; }), FaultInjected);
  disarm_fault();
  return claimed;
}

// A consumer that dies after claiming its slot and before recording a lease: the slot stays
// READING(lane).
void take_and_die(ReadyRing& ring, std::uint16_t lane) {
  arm_fault(FaultPoint::take_claimed, 1, FaultAction::throw_exception);
  EXPECT_THROW(ring.take(lane, [](MessageHandle, std::uint8_t) {}), FaultInjected);
  disarm_fault();
}

struct ReadyRingTest : ::testing::Test {
  HeapRing memory{8};
  ReadyRing& ring = memory.ring();
};

TEST_F(ReadyRingTest, HandlesOfOneProducerAreTakenInPushOrder) {
  for (std::uint32_t n = 0; n < 6; ++n) ASSERT_EQ(push(ring, handle_for(n)), PushStatus::ok);
  for (std::uint32_t n = 0; n < 6; ++n) {
    const RingTaken taken = take(ring);
    ASSERT_EQ(taken.status, RingTakeStatus::ok);
    EXPECT_EQ(taken.handle, handle_for(n));
    EXPECT_EQ(taken.position, n);
  }
}

TEST_F(ReadyRingTest, TakeOnEmptyRingReportsEmptyWithoutRecordingALease) {
  int leases = 0;
  const RingTaken taken = ring.take(kConsumer, [&](MessageHandle, std::uint8_t) { ++leases; });
  EXPECT_EQ(taken.status, RingTakeStatus::empty);
  EXPECT_TRUE(taken.handle.is_null());
  EXPECT_EQ(leases, 0);
}

TEST_F(ReadyRingTest, TakeAfterEverythingWasTakenReportsEmpty) {
  push(ring, handle_for(1));
  ASSERT_EQ(take(ring).status, RingTakeStatus::ok);
  EXPECT_EQ(take(ring).status, RingTakeStatus::empty);
}

TEST_F(ReadyRingTest, PushOnFullRingReportsFullAndLosesNothingQueued) {
  for (std::uint32_t n = 0; n < ring.capacity(); ++n) ASSERT_EQ(push(ring, handle_for(n)), PushStatus::ok);
  bool claimed = false;
  EXPECT_EQ(ring.push(handle_for(99), 0, kProducer, [&](std::uint64_t) { claimed = true; }), PushStatus::full);
  EXPECT_FALSE(claimed) << "a refused push claimed a slot";
  for (std::uint32_t n = 0; n < ring.capacity(); ++n) {
    const RingTaken taken = take(ring);
    ASSERT_EQ(taken.status, RingTakeStatus::ok) << n;
    EXPECT_EQ(taken.handle, handle_for(n));
  }
  EXPECT_EQ(take(ring).status, RingTakeStatus::empty);
}

TEST_F(ReadyRingTest, FullRingAcceptsAPushAgainOnceOneHandleIsTaken) {
  for (std::uint32_t n = 0; n < ring.capacity(); ++n) push(ring, handle_for(n));
  ASSERT_EQ(push(ring, handle_for(99)), PushStatus::full);
  ASSERT_EQ(take(ring).status, RingTakeStatus::ok);
  EXPECT_EQ(push(ring, handle_for(99)), PushStatus::ok);
}

TEST(ReadyRing, PositionsAndHandlesStayInOrderOverManyLaps) {
  HeapRing memory(4);
  ReadyRing& ring = memory.ring();
  // Three handles always in flight, so every lap meets a ring that is neither empty nor full.
  for (std::uint32_t n = 0; n < 3; ++n) ASSERT_EQ(push(ring, handle_for(n)), PushStatus::ok);
  for (std::uint32_t n = 0; n < 10'000; ++n) {
    ASSERT_EQ(push(ring, handle_for(n + 3)), PushStatus::ok) << n;
    const RingTaken taken = take(ring);
    ASSERT_EQ(taken.status, RingTakeStatus::ok) << n;
    ASSERT_EQ(taken.position, n);
    ASSERT_EQ(taken.handle, handle_for(n));
  }
  EXPECT_EQ(ring.depth(), 3u);
}

TEST(ReadyRing, LapCounterWrapsRoundTwoToThe32WithoutStoppingTheRing) {
  constexpr std::uint32_t kCapacity = 4;
  HeapRing memory(kCapacity);
  // A ring that has run for 2^32 - 2 laps: head, tail and every slot at that lap.
  const std::uint64_t start = std::uint64_t{0xfffffffe} * kCapacity;
  memory.header().tail.store(start);
  memory.header().head.store(start);
  for (std::uint32_t index = 0; index < kCapacity; ++index) {
    memory.slot(index).state.store(SlotState{0, 0, SlotKind::empty, 0xfffffffe}.encode());
  }
  ReadyRing& ring = memory.ring();
  for (std::uint32_t n = 0; n < 4 * kCapacity; ++n) {
    ASSERT_EQ(push(ring, handle_for(n)), PushStatus::ok) << n;
    const RingTaken taken = take(ring);
    ASSERT_EQ(taken.status, RingTakeStatus::ok) << n;
    EXPECT_EQ(taken.position, start + n);
    EXPECT_EQ(taken.handle, handle_for(n));
  }
}

TEST_F(ReadyRingTest, FreshRingLooksEmptyAndNotFull) {
  EXPECT_TRUE(ring.looks_empty());
  EXPECT_FALSE(ring.looks_full());
  EXPECT_EQ(ring.depth(), 0u);
}

TEST_F(ReadyRingTest, RingLooksFullExactlyWhenCapacityHandlesAreQueued) {
  for (std::uint32_t n = 0; n + 1 < ring.capacity(); ++n) push(ring, handle_for(n));
  EXPECT_FALSE(ring.looks_full());
  push(ring, handle_for(100));
  EXPECT_TRUE(ring.looks_full());
  EXPECT_FALSE(ring.looks_empty());
  take(ring);
  EXPECT_FALSE(ring.looks_full());
}

TEST_F(ReadyRingTest, RingStopsLookingEmptyWhenAHandleIsPublished) {
  push(ring, handle_for(1));
  EXPECT_FALSE(ring.looks_empty());
  take(ring);
  EXPECT_TRUE(ring.looks_empty());
}

TEST_F(ReadyRingTest, UnpublishedClaimAtTheHeadLooksEmpty) {
  push_and_die(ring, handle_for(1), kDeadLane);
  EXPECT_TRUE(ring.looks_empty());
}

TEST_F(ReadyRingTest, TombstoneAtTheHeadDoesNotLookEmptySoASleeperWakesToSkipIt) {
  push_and_die(ring, handle_for(1), kDeadLane);
  ring.tombstone_writes_of(kDeadLane, 1);
  EXPECT_FALSE(ring.looks_empty());
}

TEST(ReadyRing, ConsumerALapAheadOfASlowReaderFindsTheRingEmptyAndSoItLooks) {
  HeapRing memory(2);
  ReadyRing& ring = memory.ring();
  push(ring, handle_for(1));
  push(ring, handle_for(2));
  RingTakeStatus seen_inside = RingTakeStatus::ok;
  bool looked_empty_inside = false;
  ring.take(kConsumer, [&](MessageHandle, std::uint8_t) {
    ASSERT_EQ(take(ring, kConsumer + 1).status, RingTakeStatus::ok);
    // The head is at position 2, slot 0, which the slow reader still holds at lap 0: take
    // finds nothing there, and a consumer that looks must not spin on it instead of sleeping.
    seen_inside = take(ring, kConsumer + 1).status;
    looked_empty_inside = ring.looks_empty();
  });
  EXPECT_EQ(seen_inside, RingTakeStatus::empty);
  EXPECT_TRUE(looked_empty_inside);
}

TEST(ReadyRing, ProducerCannotReuseASlotWhoseHandleIsStillBeingRead) {
  HeapRing memory(2);
  ReadyRing& ring = memory.ring();
  push(ring, handle_for(1));
  push(ring, handle_for(2));
  PushStatus pushed_inside = PushStatus::ok;
  ring.take(kConsumer, [&](MessageHandle, std::uint8_t) {
    ASSERT_EQ(take(ring, kConsumer + 1).handle, handle_for(2));
    pushed_inside = push(ring, handle_for(3));  // position 2: slot 0, still READING at lap 0
  });
  EXPECT_EQ(pushed_inside, PushStatus::full);
  EXPECT_EQ(push(ring, handle_for(4)), PushStatus::ok) << "free once the read is done";
}

TEST_F(ReadyRingTest, DepthIsPushesMinusTakes) {
  for (std::uint32_t n = 0; n < 5; ++n) push(ring, handle_for(n));
  take(ring);
  take(ring);
  EXPECT_EQ(ring.depth(), 3u);
}

TEST(ReadyRing, OnClaimGetsThePositionTheHandleIsTakenFrom) {
  HeapRing memory(4);
  ReadyRing& ring = memory.ring();
  // Off position 0 and into the second lap, so the position is not an index by accident.
  for (std::uint32_t n = 0; n < 5; ++n) {
    push(ring, handle_for(n));
    take(ring);
  }
  std::uint64_t claimed = ~std::uint64_t{0};
  ASSERT_EQ(ring.push(handle_for(7), 0, kProducer, [&](std::uint64_t position) { claimed = position; }),
            PushStatus::ok);
  const RingTaken taken = take(ring);
  ASSERT_EQ(taken.status, RingTakeStatus::ok);
  EXPECT_EQ(claimed, 5u);
  EXPECT_EQ(taken.position, claimed);
}

TEST_F(ReadyRingTest, OnClaimRunsBeforeTheHandleCanBeTaken) {
  RingTakeStatus seen_inside = RingTakeStatus::ok;
  bool unpublished_inside = false;
  ring.push(handle_for(1), 0, kProducer, [&](std::uint64_t position) {
    seen_inside = take(ring).status;
    unpublished_inside = ring.is_unpublished_claim(position, kProducer);
  });
  EXPECT_EQ(seen_inside, RingTakeStatus::empty);
  EXPECT_TRUE(unpublished_inside);
  EXPECT_EQ(take(ring).handle, handle_for(1));
}

TEST_F(ReadyRingTest, RecordLeaseRunsOncePerTakeWithTheHandleAndItsDeliveries) {
  ring.push(handle_for(3), 4, kProducer, [](std::uint64_t) {});
  int calls = 0;
  MessageHandle recorded;
  std::uint8_t recorded_deliveries = 0;
  const RingTaken taken = ring.take(kConsumer, [&](MessageHandle handle, std::uint8_t deliveries) {
    ++calls;
    recorded = handle;
    recorded_deliveries = deliveries;
  });
  ASSERT_EQ(taken.status, RingTakeStatus::ok);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(recorded, handle_for(3));
  EXPECT_EQ(recorded_deliveries, 4);
  EXPECT_EQ(taken.deliveries, 4);
}

TEST_F(ReadyRingTest, RecordLeaseRunsWhileTheSlotIsStillClaimedByTheConsumer) {
  push(ring, handle_for(1));
  ReadyRing::Census inside;
  ring.take(kConsumer, [&](MessageHandle, std::uint8_t) { inside = ring.census(); });
  EXPECT_EQ(inside.reading, 1u);
  EXPECT_EQ(ring.census().reading, 0u);
}

TEST_F(ReadyRingTest, UnpublishedWriteStallsTheConsumersBehindIt) {
  push_and_die(ring, handle_for(1), kDeadLane);
  push(ring, handle_for(2));
  // The documented non-guarantee: a claim never published stalls the ring's consumers.
  EXPECT_EQ(take(ring).status, RingTakeStatus::empty);
  EXPECT_EQ(ring.census().writing, 1u);
}

TEST_F(ReadyRingTest, WriteLeftByDeadLaneIsTombstonedAndSkippedByConsumers) {
  push(ring, handle_for(1));
  push_and_die(ring, handle_for(2), kDeadLane);
  push(ring, handle_for(3));
  ASSERT_EQ(take(ring).handle, handle_for(1));

  EXPECT_EQ(ring.tombstone_writes_of(kDeadLane, 1), 1u);
  EXPECT_EQ(ring.census().tombstone, 1u);
  const RingTaken next = take(ring);
  ASSERT_EQ(next.status, RingTakeStatus::ok);
  EXPECT_EQ(next.handle, handle_for(3));
  EXPECT_EQ(take(ring).status, RingTakeStatus::empty);
  EXPECT_EQ(ring.census().empty, ring.capacity()) << "the consumer that skipped the tombstone emptied it";
}

TEST_F(ReadyRingTest, TombstoningTouchesOnlyTheDeadInstancesLanes) {
  push_and_die(ring, handle_for(1), kDeadLane);
  push_and_die(ring, handle_for(2), kDeadLane + 2);
  push_and_die(ring, handle_for(3), kDeadLane - 1);
  // Lanes kDeadLane and kDeadLane + 1 belong to the dead instance.
  EXPECT_EQ(ring.tombstone_writes_of(kDeadLane, 2), 1u);
  const ReadyRing::Census census = ring.census();
  EXPECT_EQ(census.tombstone, 1u);
  EXPECT_EQ(census.writing, 2u);
  EXPECT_FALSE(ring.is_unpublished_claim(0, kDeadLane));
}

TEST_F(ReadyRingTest, UnpublishedClaimIsRecognisedOnlyForItsLaneAndPosition) {
  push(ring, handle_for(1));
  const std::uint64_t position = push_and_die(ring, handle_for(2), kDeadLane);
  ASSERT_EQ(position, 1u);
  EXPECT_TRUE(ring.is_unpublished_claim(position, kDeadLane));
  EXPECT_FALSE(ring.is_unpublished_claim(position, kDeadLane + 1));
  EXPECT_FALSE(ring.is_unpublished_claim(position + ring.capacity(), kDeadLane)) << "same slot, next lap";
  EXPECT_FALSE(ring.is_unpublished_claim(0, kProducer)) << "a published slot";
}

TEST_F(ReadyRingTest, ReadLeftByDeadLaneIsResolvedAndReleased) {
  ring.push(handle_for(1), 2, kProducer, [](std::uint64_t) {});
  take_and_die(ring, kDeadLane);
  ASSERT_EQ(ring.census().reading, 1u);

  std::vector<MessageHandle> resolved;
  std::uint16_t resolved_lane = 0;
  std::uint8_t resolved_deliveries = 0;
  const std::uint32_t released =
      ring.release_reads_of(kDeadLane, 1, [&](std::uint16_t lane, MessageHandle handle, std::uint8_t deliveries) {
        resolved.push_back(handle);
        resolved_lane = lane;
        resolved_deliveries = deliveries;
        return true;
      });
  EXPECT_EQ(released, 1u);
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_EQ(resolved[0], handle_for(1));
  EXPECT_EQ(resolved_lane, kDeadLane);
  EXPECT_EQ(resolved_deliveries, 2);
  EXPECT_EQ(ring.census().empty, ring.capacity());
}

TEST_F(ReadyRingTest, ReleasedReadSlotServesTheNextLapAgain) {
  push(ring, handle_for(1));
  take_and_die(ring, kDeadLane);
  ring.release_reads_of(kDeadLane, 1, [](std::uint16_t, MessageHandle, std::uint8_t) { return true; });
  // A full lap of pushes reaches the released slot again.
  for (std::uint32_t n = 0; n < ring.capacity(); ++n) ASSERT_EQ(push(ring, handle_for(10 + n)), PushStatus::ok) << n;
  for (std::uint32_t n = 0; n < ring.capacity(); ++n) ASSERT_EQ(take(ring).handle, handle_for(10 + n)) << n;
}

TEST_F(ReadyRingTest, UnresolvedReadStaysReadingForTheNextPass) {
  push(ring, handle_for(1));
  take_and_die(ring, kDeadLane);
  EXPECT_EQ(ring.release_reads_of(kDeadLane, 1, [](std::uint16_t, MessageHandle, std::uint8_t) { return false; }), 0u);
  EXPECT_EQ(ring.census().reading, 1u);
  EXPECT_EQ(ring.release_reads_of(kDeadLane, 1, [](std::uint16_t, MessageHandle, std::uint8_t) { return true; }), 1u);
  EXPECT_EQ(ring.census().reading, 0u);
}

TEST_F(ReadyRingTest, DeathAfterRecordingTheLeaseLeavesTheSlotReadingForRecovery) {
  push(ring, handle_for(1));
  int leases = 0;
  arm_fault(FaultPoint::take_leased, 1, FaultAction::throw_exception);
  EXPECT_THROW(ring.take(kDeadLane, [&](MessageHandle, std::uint8_t) { ++leases; }), FaultInjected);
  disarm_fault();
  EXPECT_EQ(leases, 1);
  EXPECT_EQ(ring.census().reading, 1u);
  EXPECT_EQ(ring.release_reads_of(kDeadLane, 1, [](std::uint16_t, MessageHandle, std::uint8_t) { return true; }), 1u);
  EXPECT_EQ(ring.census().empty, ring.capacity());
}

TEST_F(ReadyRingTest, DeathOfAConsumerAfterClaimingBlocksNoOtherConsumer) {
  push(ring, handle_for(1));
  push(ring, handle_for(2));
  take_and_die(ring, kDeadLane);
  const RingTaken next = take(ring);
  ASSERT_EQ(next.status, RingTakeStatus::ok);
  EXPECT_EQ(next.handle, handle_for(2));
}

TEST_F(ReadyRingTest, DeathBetweenClaimingAndMovingTheTailBlocksNoOtherProducer) {
  arm_fault(FaultPoint::push_claimed, 1, FaultAction::throw_exception);
  EXPECT_THROW(push(ring, handle_for(1), kDeadLane), FaultInjected);
  disarm_fault();
  ASSERT_EQ(memory.header().tail.load(), 0u);
  std::uint64_t claimed = ~std::uint64_t{0};
  ASSERT_EQ(ring.push(handle_for(2), 0, kProducer, [&](std::uint64_t position) { claimed = position; }),
            PushStatus::ok);
  EXPECT_EQ(claimed, 1u) << "the push helped the tail past the dead lane's slot";
  ring.tombstone_writes_of(kDeadLane, 1);
  EXPECT_EQ(take(ring).handle, handle_for(2));
}

TEST_F(ReadyRingTest, RecovererDyingMidReleaseLeavesTheReadForTheNextPass) {
  push(ring, handle_for(1));
  take_and_die(ring, kDeadLane);
  int resolved = 0;
  const auto resolve = [&](std::uint16_t, MessageHandle, std::uint8_t) {
    ++resolved;
    return true;
  };
  arm_fault(FaultPoint::recovery_step, 1, FaultAction::throw_exception);
  EXPECT_THROW(ring.release_reads_of(kDeadLane, 1, resolve), FaultInjected);
  disarm_fault();
  EXPECT_EQ(ring.census().reading, 1u);
  EXPECT_EQ(ring.release_reads_of(kDeadLane, 1, resolve), 1u);
  EXPECT_EQ(resolved, 2) << "resolved again by the next pass, never lost";
}

TEST_F(ReadyRingTest, ReleasingReadsSkipsOtherInstancesLanes) {
  push(ring, handle_for(1));
  take_and_die(ring, kDeadLane + 1);
  int resolved = 0;
  EXPECT_EQ(ring.release_reads_of(kDeadLane, 1,
                                  [&](std::uint16_t, MessageHandle, std::uint8_t) {
                                    ++resolved;
                                    return true;
                                  }),
            0u);
  EXPECT_EQ(resolved, 0);
  EXPECT_EQ(ring.census().reading, 1u);
}

TEST_F(ReadyRingTest, CensusCountsSlotsOfEveryKind) {
  push(ring, handle_for(1));
  push(ring, handle_for(2));
  take_and_die(ring, kDeadLane);         // position 0: READING
  push_and_die(ring, handle_for(3), 6);  // position 2: WRITING
  push_and_die(ring, handle_for(4), 7);  // position 3: WRITING, then TOMBSTONE
  ring.tombstone_writes_of(7, 1);
  memory.slot(7).state.store(SlotState{0, 0, static_cast<SlotKind>(9), 0}.encode());
  const ReadyRing::Census census = ring.census();
  EXPECT_EQ(census.reading, 1u);
  EXPECT_EQ(census.full, 1u);
  EXPECT_EQ(census.writing, 1u);
  EXPECT_EQ(census.tombstone, 1u);
  EXPECT_EQ(census.corrupt, 1u);
  EXPECT_EQ(census.empty, ring.capacity() - 5);
}

TEST_F(ReadyRingTest, ForEachFullVisitsExactlyThePublishedHandles) {
  push(ring, handle_for(1));
  push(ring, handle_for(2));
  push_and_die(ring, handle_for(3), kDeadLane);
  take(ring);
  std::vector<MessageHandle> visited;
  ring.for_each_full([&](MessageHandle handle) { visited.push_back(handle); });
  EXPECT_EQ(visited, std::vector<MessageHandle>{handle_for(2)});
}

TEST_F(ReadyRingTest, HeadMovedLapsAheadMakesTakeReportCorrupted) {
  push(ring, handle_for(1));
  memory.header().head.store(std::uint64_t{1000} * ring.capacity());
  EXPECT_EQ(take(ring).status, RingTakeStatus::corrupted);
}

TEST(ReadyRing, HeadMovedLapsBackMakesTakeReportCorruptedInsteadOfWalkingForward) {
  HeapRing memory(4);
  ReadyRing& ring = memory.ring();
  for (std::uint32_t n = 0; n < 3 * ring.capacity(); ++n) {
    push(ring, handle_for(n));
    take(ring);
  }
  memory.header().head.store(0);
  EXPECT_EQ(take(ring).status, RingTakeStatus::corrupted);
}

TEST_F(ReadyRingTest, TailMovedLapsAheadMakesPushReportCorrupted) {
  memory.header().tail.store(std::uint64_t{1000} * ring.capacity());
  EXPECT_EQ(push(ring, handle_for(1)), PushStatus::corrupted);
}

TEST(ReadyRing, TailMovedLapsBackMakesPushReportCorruptedInsteadOfWalkingForward) {
  HeapRing memory(4);
  ReadyRing& ring = memory.ring();
  for (std::uint32_t n = 0; n < 3 * ring.capacity(); ++n) {
    push(ring, handle_for(n));
    take(ring);
  }
  memory.header().tail.store(0);
  EXPECT_EQ(push(ring, handle_for(99)), PushStatus::corrupted);
}

TEST_F(ReadyRingTest, SlotOfUnknownKindMakesTakeReportCorrupted) {
  memory.slot(0).state.store(SlotState{0, 0, static_cast<SlotKind>(9), 0}.encode());
  EXPECT_EQ(take(ring).status, RingTakeStatus::corrupted);
}

TEST_F(ReadyRingTest, PushWithNobodyAsleepLeavesTheSignalAlone) {
  push(ring, handle_for(1));
  EXPECT_EQ(memory.header().signal.load(), 0u);
}

TEST_F(ReadyRingTest, PushWithASleeperBumpsTheSignal) {
  memory.header().sleepers.store(1);
  push(ring, handle_for(1));
  EXPECT_EQ(memory.header().signal.load(), 1u);
}

TEST_F(ReadyRingTest, BeginSleepCountsTheSleeperInAndReturnsTheSignal) {
  memory.header().signal.store(41);
  EXPECT_EQ(ring.begin_sleep(), 41u);
  EXPECT_EQ(memory.header().sleepers.load(), 1u);
  ring.end_sleep();
  EXPECT_EQ(memory.header().sleepers.load(), 0u);
}

TEST_F(ReadyRingTest, SignalIsTheWordSleepersWaitOn) { EXPECT_EQ(&ring.signal(), &memory.header().signal); }

TEST_F(ReadyRingTest, PushAfterBeginSleepChangesTheSignalItReturned) {
  const std::uint32_t signal = ring.begin_sleep();
  push(ring, handle_for(1));
  ring.end_sleep();
  EXPECT_NE(ring.signal().load(), signal);
}

TEST_F(ReadyRingTest, TombstoningWithASleeperBumpsTheSignal) {
  push_and_die(ring, handle_for(1), kDeadLane);
  push(ring, handle_for(2));
  // A consumer asleep behind the dead lane's claim (the head looks empty): it must wake to
  // step past the tombstone to the handle pushed behind it.
  const std::uint32_t signal = ring.begin_sleep();
  ASSERT_TRUE(ring.looks_empty());
  ring.tombstone_writes_of(kDeadLane, 1);
  ring.end_sleep();
  EXPECT_NE(ring.signal().load(), signal);
}

TEST_F(ReadyRingTest, WakeBumpsTheSignalOnlyWithASleeper) {
  ring.wake();
  EXPECT_EQ(ring.signal().load(), 0u);
  ring.begin_sleep();
  ring.wake();
  ring.end_sleep();
  EXPECT_EQ(ring.signal().load(), 1u);
}

TEST_F(ReadyRingTest, SleeperWaitingOnTheSignalIsWokenByAPushFromAnotherThread) {
  std::thread producer([&] {
    while (memory.header().sleepers.load() == 0) std::this_thread::yield();
    push(ring, handle_for(1));
  });
  const std::uint32_t signal = ring.begin_sleep();
  if (ring.looks_empty()) futex_wait(ring.signal(), signal, kForever);
  ring.end_sleep();
  producer.join();
  EXPECT_EQ(take(ring).handle, handle_for(1));
}

TEST_F(ReadyRingTest, WaitReturnsAtOnceWhenAHandleIsQueued) {
  push(ring, handle_for(1));
  ring.wait(kForever);
  EXPECT_EQ(memory.header().sleepers.load(), 0u);
  EXPECT_EQ(take(ring).status, RingTakeStatus::ok);
}

TEST_F(ReadyRingTest, WaitReturnsWhenAnotherThreadPushes) {
  std::thread producer([&] {
    // Only once the waiter has counted itself in: then the push must wake it, the path under test.
    while (memory.header().sleepers.load() == 0) std::this_thread::yield();
    push(ring, handle_for(1));
  });
  ring.wait(kForever);
  producer.join();
  EXPECT_EQ(memory.header().sleepers.load(), 0u);
  EXPECT_EQ(take(ring).handle, handle_for(1));
}

TEST(ReadyRingThreads, EveryHandleOfFourProducersIsTakenExactlyOnceByFourConsumers) {
  constexpr std::uint32_t kProducers = 4, kConsumers = 4, kPerProducer = 50'000;
  constexpr std::uint32_t kTotal = kProducers * kPerProducer;
  // Small: producers meet a full ring, consumers contend for each slot, every slot runs many laps.
  HeapRing memory(16);
  ReadyRing& ring = memory.ring();
  std::vector<std::atomic<std::uint32_t>> times_taken(kTotal);
  std::atomic<std::uint32_t> producers_done{0};
  std::atomic<std::uint32_t> corrupted{0};

  std::vector<std::thread> threads;
  for (std::uint32_t p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      const auto lane = static_cast<std::uint16_t>(1 + p);
      for (std::uint32_t i = 0; i < kPerProducer; ++i) {
        const MessageHandle handle = handle_for(p * kPerProducer + i);
        PushStatus status;
        while ((status = push(ring, handle, lane)) == PushStatus::full) std::this_thread::yield();
        if (status != PushStatus::ok) {
          corrupted.fetch_add(1);
          break;
        }
      }
      producers_done.fetch_add(1, std::memory_order_release);
    });
  }
  for (std::uint32_t c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&, c] {
      const auto lane = static_cast<std::uint16_t>(100 + c);
      for (;;) {
        // Read before taking: an empty ring after every producer finished is empty for good.
        const bool finished = producers_done.load(std::memory_order_acquire) == kProducers;
        const RingTaken taken = take(ring, lane);
        if (taken.status == RingTakeStatus::ok) {
          if (taken.handle.chunk() < kTotal && taken.handle == handle_for(taken.handle.chunk())) {
            times_taken[taken.handle.chunk()].fetch_add(1, std::memory_order_relaxed);
          } else {
            corrupted.fetch_add(1);
          }
        } else if (taken.status == RingTakeStatus::corrupted) {
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
  for (std::thread& thread : threads) thread.join();

  EXPECT_EQ(corrupted.load(), 0u);
  std::uint32_t lost = 0, duplicated = 0;
  for (const auto& count : times_taken) {
    lost += count.load() == 0;
    duplicated += count.load() > 1;
  }
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(duplicated, 0u);
  EXPECT_EQ(ring.census().empty, ring.capacity());
}

TEST(ReadyRingThreads, EachConsumerSeesEachProducersHandlesInPushOrder) {
  constexpr std::uint32_t kProducers = 2, kConsumers = 2, kPerProducer = 20'000;
  HeapRing memory(16);
  ReadyRing& ring = memory.ring();
  std::atomic<std::uint32_t> producers_done{0};
  std::atomic<std::uint32_t> corrupted{0};
  std::vector<std::vector<std::uint32_t>> seen(kConsumers);

  std::vector<std::thread> threads;
  for (std::uint32_t p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      for (std::uint32_t i = 0; i < kPerProducer; ++i) {
        PushStatus status;
        while ((status = push(ring, handle_for(p * kPerProducer + i), static_cast<std::uint16_t>(1 + p))) ==
               PushStatus::full) {
          std::this_thread::yield();
        }
        if (status != PushStatus::ok) {
          corrupted.fetch_add(1);
          break;
        }
      }
      producers_done.fetch_add(1, std::memory_order_release);
    });
  }
  for (std::uint32_t c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&, c] {
      for (;;) {
        const bool finished = producers_done.load(std::memory_order_acquire) == kProducers;
        const RingTaken taken = take(ring, static_cast<std::uint16_t>(100 + c));
        if (taken.status == RingTakeStatus::ok) {
          seen[c].push_back(taken.handle.chunk());
        } else if (taken.status == RingTakeStatus::corrupted) {
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

}  // namespace
}  // namespace exobus::shm
