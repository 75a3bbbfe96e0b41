// Unit tests of a lane's lease table on its own: reserving and activating, the token's
// generation check, ack, renew, reclaim and the races between them, the daemon's park and
// scans, deaths at each step and what the next pass finds, and the packing of states and
// tokens. The entries are a zeroed in-process array, as in a new memory object.
#include "exobus/shm/lease_table.hpp"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <barrier>
#include <optional>
#include <thread>
#include <vector>

namespace exobus::shm {
namespace {

constexpr std::uint16_t kLane = 7;
constexpr std::uint32_t kDeadline = 1000;

MessageHandle handle_for(std::uint32_t n) { return MessageHandle(n, n % kMaxLinks, 1 + n % (kGenerationMask - 1)); }

LeaseState state_of(const LeaseEntry& entry) { return LeaseState::decode(entry.state.load()); }

struct Lease {
  LeaseToken token;
  std::uint64_t word;  // the ACTIVE state activate() stored
};

// What a take does: reserve a FREE entry, then make it the ACTIVE lease of `handle`.
Lease take_lease(const LeaseTable& table, MessageHandle handle, std::uint32_t from = 0, std::uint8_t deliveries = 0) {
  const std::optional<LeaseTable::Reserved> reserved = table.reserve(from);
  if (!reserved) {
    ADD_FAILURE() << "no FREE entry to reserve";
    return {};
  }
  const std::uint64_t word = table.activate(*reserved, handle, kDeadline, deliveries);
  return {{kLane, reserved->index, reserved->generation}, word};
}

// The daemon's side of a reclaim: win the lease from the word it reads.
bool reclaim(LeaseEntry& entry, std::uint64_t& word) {
  word = entry.state.load();
  return LeaseTable::mark_reclaiming(entry, word);
}

// What an ack does: read the lease's handle with its token, then free it from that word.
bool ack(const LeaseTable& table, const LeaseToken& token) {
  std::uint64_t word = 0;
  return LeaseTable::active_handle(*table.find(token), token, word) &&
         LeaseTable::free_active(*table.find(token), token, word);
}

// Spins until `counter` reaches `value`; yields now and then in case the other side has no core.
void wait_for(const std::atomic<std::uint32_t>& counter, std::uint32_t value) {
  for (std::uint32_t spins = 1; counter.load(std::memory_order_acquire) != value; ++spins) {
    if (spins % 1024 == 0) std::this_thread::yield();
  }
}

struct LeaseTableTest : ::testing::Test {
  std::array<LeaseEntry, 4> entries{};
  LeaseTable table{entries};
};

// --- reserve and activate ---

TEST_F(LeaseTableTest, ReserveFindsTheFreeEntryWhereTheScanStarts) {
  const std::optional<LeaseTable::Reserved> reserved = table.reserve(2);
  ASSERT_TRUE(reserved);
  EXPECT_EQ(reserved->index, 2u);
  EXPECT_EQ(reserved->generation, 0u);
}

TEST_F(LeaseTableTest, ReserveScansRoundPastHeldEntries) {
  take_lease(table, handle_for(1), 2);
  take_lease(table, handle_for(2), 3);
  const std::optional<LeaseTable::Reserved> reserved = table.reserve(2);
  ASSERT_TRUE(reserved);
  EXPECT_EQ(reserved->index, 0u);
}

TEST_F(LeaseTableTest, ReserveStartingBeyondTheTableWrapsIntoIt) {
  const std::optional<LeaseTable::Reserved> reserved = table.reserve(table.size() + 1);
  ASSERT_TRUE(reserved);
  EXPECT_EQ(reserved->index, 1u);
}

TEST_F(LeaseTableTest, ReserveFindsNothingWhenEveryEntryIsHeld) {
  for (std::uint32_t n = 0; n < table.size(); ++n) take_lease(table, handle_for(n), n);
  std::uint64_t word = 0;
  ASSERT_TRUE(reclaim(entries[1], word));  // RECLAIMING is held too
  EXPECT_FALSE(table.reserve(0));
}

TEST_F(LeaseTableTest, ReserveChangesNothing) {
  table.reserve(0);
  EXPECT_EQ(entries[0].state.load(), 0u);
  EXPECT_TRUE(table.reserve(0)) << "the entry is still FREE for the next reserve";
}

TEST_F(LeaseTableTest, ReserveGivesTheGenerationTheLeaseWillHave) {
  entries[1].state.store(LeaseState{0, 0, LeaseKind::free, 41}.encode());
  const std::optional<LeaseTable::Reserved> reserved = table.reserve(1);
  ASSERT_TRUE(reserved);
  EXPECT_EQ(reserved->generation, 41u);
}

TEST_F(LeaseTableTest, ActivatedLeaseHoldsItsHandleDeadlineAndDeliveries) {
  const Lease lease = take_lease(table, handle_for(5), 0, 2);
  std::uint64_t word = 0;
  EXPECT_EQ(LeaseTable::active_handle(*table.find(lease.token), lease.token, word), handle_for(5));
  EXPECT_EQ(word, lease.word);
  const LeaseState state = state_of(entries[lease.token.entry]);
  EXPECT_EQ(state.kind, LeaseKind::active);
  EXPECT_EQ(state.deadline_ms, kDeadline);
  EXPECT_EQ(state.deliveries, 2);
  EXPECT_EQ(state.generation, lease.token.generation);
}

TEST_F(LeaseTableTest, DeathBeforeActivatingLeavesTheEntryFreeAndHoldingNothing) {
  const std::optional<LeaseTable::Reserved> reserved = table.reserve(0);
  ASSERT_TRUE(reserved);
  entries[reserved->index].handle.store(handle_for(5).word());  // activate()'s first store, then death
  EXPECT_FALSE(table.holds(handle_for(5)));
  int held = 0;
  table.for_each_held([&](LeaseEntry&, std::uint64_t) { ++held; });
  EXPECT_EQ(held, 0);
  ASSERT_TRUE(table.park(handle_for(5), 1, 0)) << "recovery parks the half-taken message there";
  EXPECT_TRUE(table.holds(handle_for(5)));
}

// --- tokens ---

TEST_F(LeaseTableTest, TokenOfAnotherGenerationGetsNothing) {
  const Lease lease = take_lease(table, handle_for(5));
  LeaseToken other = lease.token;
  other.generation += 1;
  std::uint64_t word = 0;
  EXPECT_FALSE(LeaseTable::active_handle(*table.find(other), other, word));
  EXPECT_FALSE(table.renew(other, 5000));
  EXPECT_FALSE(ack(table, other));
  EXPECT_EQ(entries[lease.token.entry].state.load(), lease.word);
}

TEST_F(LeaseTableTest, TokenOfAnEntryOutsideTheTableGetsNothing) {
  const LeaseToken outside{kLane, table.size(), 0};
  EXPECT_EQ(table.find(outside), nullptr);
  EXPECT_FALSE(table.renew(outside, 1));
}

TEST_F(LeaseTableTest, FreeActiveFreesTheLeaseAndMovesItsGenerationOn) {
  const Lease lease = take_lease(table, handle_for(5));
  EXPECT_TRUE(ack(table, lease.token));
  const LeaseState state = state_of(entries[lease.token.entry]);
  EXPECT_EQ(state.kind, LeaseKind::free);
  EXPECT_EQ(state.generation, lease.token.generation + 1);
  EXPECT_FALSE(table.holds(handle_for(5)));
}

TEST_F(LeaseTableTest, TokenOfAFreedLeaseIsLate) {
  const Lease lease = take_lease(table, handle_for(5));
  ASSERT_TRUE(LeaseTable::free_active(*table.find(lease.token), lease.token, lease.word));
  std::uint64_t word = 0;
  EXPECT_FALSE(LeaseTable::active_handle(*table.find(lease.token), lease.token, word));
  EXPECT_FALSE(LeaseTable::free_active(*table.find(lease.token), lease.token, lease.word));
  EXPECT_FALSE(table.renew(lease.token, 5000));
}

TEST_F(LeaseTableTest, TokenOfAFreedLeaseDoesNotReachTheEntrysNextLease) {
  const Lease first = take_lease(table, handle_for(5));
  ASSERT_TRUE(LeaseTable::free_active(*table.find(first.token), first.token, first.word));
  const Lease second = take_lease(table, handle_for(6), first.token.entry);
  ASSERT_EQ(second.token.entry, first.token.entry);
  std::uint64_t word = 0;
  EXPECT_FALSE(LeaseTable::active_handle(*table.find(first.token), first.token, word));
  EXPECT_FALSE(LeaseTable::free_active(*table.find(first.token), first.token, first.word));
  EXPECT_FALSE(table.renew(first.token, 5000));
  EXPECT_EQ(LeaseTable::active_handle(*table.find(second.token), second.token, word), handle_for(6));
  EXPECT_EQ(state_of(entries[second.token.entry]).deadline_ms, kDeadline);
}

// --- renew ---

TEST_F(LeaseTableTest, RenewMovesOnlyTheDeadline) {
  const Lease lease = take_lease(table, handle_for(5), 0, 3);
  EXPECT_TRUE(table.renew(lease.token, 5000));
  const LeaseState state = state_of(entries[lease.token.entry]);
  EXPECT_EQ(state.deadline_ms, 5000u);
  EXPECT_EQ(state.kind, LeaseKind::active);
  EXPECT_EQ(state.deliveries, 3);
  EXPECT_EQ(state.generation, lease.token.generation);
  std::uint64_t word = 0;
  EXPECT_EQ(LeaseTable::active_handle(*table.find(lease.token), lease.token, word), handle_for(5));
}

TEST_F(LeaseTableTest, FreeActiveRetriesPastARenewal) {
  const Lease lease = take_lease(table, handle_for(5));
  ASSERT_TRUE(table.renew(lease.token, kDeadline + 1));
  EXPECT_TRUE(LeaseTable::free_active(*table.find(lease.token), lease.token, lease.word))
      << "the word read before the renewal";
  EXPECT_EQ(state_of(entries[lease.token.entry]).kind, LeaseKind::free);
}

TEST_F(LeaseTableTest, RenewFailsOnceTheLeaseIsReclaimed) {
  const Lease lease = take_lease(table, handle_for(5));
  std::uint64_t word = 0;
  ASSERT_TRUE(reclaim(entries[lease.token.entry], word));
  EXPECT_FALSE(table.renew(lease.token, 5000));
  EXPECT_EQ(state_of(entries[lease.token.entry]).deadline_ms, kDeadline);
  EXPECT_EQ(state_of(entries[lease.token.entry]).kind, LeaseKind::reclaiming);
}

// --- reclaim ---

TEST_F(LeaseTableTest, MarkReclaimingTakesTheLeaseFromItsToken) {
  const Lease lease = take_lease(table, handle_for(5));
  std::uint64_t word = 0;
  ASSERT_TRUE(reclaim(entries[lease.token.entry], word));
  EXPECT_EQ(LeaseState::decode(word).kind, LeaseKind::reclaiming);
  EXPECT_EQ(word, entries[lease.token.entry].state.load()) << "word becomes the RECLAIMING state";
  std::uint64_t read = 0;
  EXPECT_FALSE(LeaseTable::active_handle(*table.find(lease.token), lease.token, read));
  EXPECT_FALSE(LeaseTable::free_active(*table.find(lease.token), lease.token, lease.word));
}

TEST_F(LeaseTableTest, MarkReclaimingOfAFreeEntryFails) {
  std::uint64_t word = 0;
  EXPECT_FALSE(reclaim(entries[0], word));
  EXPECT_EQ(state_of(entries[0]).kind, LeaseKind::free);
}

TEST_F(LeaseTableTest, MarkReclaimingFromAWordAckedMeanwhileFails) {
  const Lease lease = take_lease(table, handle_for(5));
  std::uint64_t word = entries[lease.token.entry].state.load();
  ASSERT_TRUE(ack(table, lease.token));
  EXPECT_FALSE(LeaseTable::mark_reclaiming(entries[lease.token.entry], word));
  EXPECT_EQ(state_of(entries[lease.token.entry]).kind, LeaseKind::free);
}

TEST_F(LeaseTableTest, MarkReclaimingFromAWordRenewedMeanwhileFailsAndLeavesTheLeaseActive) {
  const Lease lease = take_lease(table, handle_for(5));
  std::uint64_t word = entries[lease.token.entry].state.load();
  ASSERT_TRUE(table.renew(lease.token, 5000));
  EXPECT_FALSE(LeaseTable::mark_reclaiming(entries[lease.token.entry], word));
  EXPECT_EQ(state_of(entries[lease.token.entry]).kind, LeaseKind::active);
  EXPECT_TRUE(ack(table, lease.token));
}

TEST_F(LeaseTableTest, FreeReclaimedFreesTheEntryWithTheNextGeneration) {
  const Lease lease = take_lease(table, handle_for(5));
  std::uint64_t word = 0;
  ASSERT_TRUE(reclaim(entries[lease.token.entry], word));
  LeaseTable::free_reclaimed(entries[lease.token.entry], word);
  const LeaseState state = state_of(entries[lease.token.entry]);
  EXPECT_EQ(state.kind, LeaseKind::free);
  EXPECT_EQ(state.generation, lease.token.generation + 1);
}

TEST_F(LeaseTableTest, RecovererDyingBeforeFreeingLeavesTheLeaseReclaimingForTheNextPass) {
  const Lease lease = take_lease(table, handle_for(5));
  std::uint64_t word = 0;
  ASSERT_TRUE(reclaim(entries[lease.token.entry], word));  // and the copy pushed, then death

  std::vector<std::uint64_t> found;
  table.for_each_held([&](LeaseEntry& entry, std::uint64_t seen) {
    std::uint64_t mover = seen;
    if (LeaseTable::mark_reclaiming(entry, mover)) {  // RECLAIMING: the next pass is the mover
      found.push_back(entry.handle.load());
      LeaseTable::free_reclaimed(entry, mover);
    }
  });
  EXPECT_EQ(found, std::vector<std::uint64_t>{handle_for(5).word()});
  EXPECT_EQ(state_of(entries[lease.token.entry]).kind, LeaseKind::free);
}

TEST_F(LeaseTableTest, FreeReclaimedWithAnEarlierLifesWordLeavesTheNewLeaseAlone) {
  const Lease first = take_lease(table, handle_for(5));
  LeaseEntry& entry = entries[first.token.entry];
  std::uint64_t word = 0;
  ASSERT_TRUE(reclaim(entry, word));
  LeaseTable::free_reclaimed(entry, word);
  const Lease second = take_lease(table, handle_for(6), first.token.entry);
  ASSERT_EQ(second.token.entry, first.token.entry);
  LeaseTable::free_reclaimed(entry, word);  // a recoverer repeating its last step
  std::uint64_t read = 0;
  EXPECT_EQ(LeaseTable::active_handle(*table.find(second.token), second.token, read), handle_for(6));
}

// --- the daemon's scans and park ---

TEST_F(LeaseTableTest, HoldsSeesActiveAndReclaimingLeasesOnly) {
  const Lease lease = take_lease(table, handle_for(5));
  EXPECT_TRUE(table.holds(handle_for(5)));
  EXPECT_FALSE(table.holds(handle_for(6)));
  std::uint64_t word = 0;
  ASSERT_TRUE(reclaim(entries[lease.token.entry], word));
  EXPECT_TRUE(table.holds(handle_for(5)));
  LeaseTable::free_reclaimed(entries[lease.token.entry], word);
  EXPECT_FALSE(table.holds(handle_for(5))) << "a FREE entry still has the handle word, but holds nothing";
}

TEST_F(LeaseTableTest, ParkUsesAFreeEntryAndMakesItReclaimingDueNow) {
  const Lease active = take_lease(table, handle_for(1), 0);
  entries[1].state.store(LeaseState{0, 0, LeaseKind::free, 9}.encode());
  ASSERT_TRUE(table.park(handle_for(2), 4, 1234));
  const LeaseState parked = state_of(entries[1]);
  EXPECT_EQ(parked.kind, LeaseKind::reclaiming);
  EXPECT_EQ(parked.deadline_ms, 1234u);
  EXPECT_EQ(parked.deliveries, 4);
  EXPECT_EQ(parked.generation, 9u);
  EXPECT_EQ(entries[1].handle.load(), handle_for(2).word());
  EXPECT_EQ(entries[0].state.load(), active.word) << "the ACTIVE lease is untouched";
}

TEST_F(LeaseTableTest, ParkedLeaseCannotBeAckedOrRenewedWithAToken) {
  ASSERT_TRUE(table.park(handle_for(2), 0, 1234));
  const LeaseToken token{kLane, 0, 0};
  std::uint64_t word = 0;
  EXPECT_FALSE(LeaseTable::active_handle(*table.find(token), token, word));
  EXPECT_FALSE(table.renew(token, 5000));
  EXPECT_FALSE(ack(table, token));
  EXPECT_EQ(state_of(entries[0]).kind, LeaseKind::reclaiming);
}

TEST_F(LeaseTableTest, ParkFailsWhenNoEntryIsFree) {
  for (std::uint32_t n = 0; n < table.size(); ++n) take_lease(table, handle_for(n), n);
  EXPECT_FALSE(table.park(handle_for(9), 0, 1234));
  EXPECT_FALSE(table.holds(handle_for(9)));
}

TEST(LeaseTable, ForEachHeldVisitsExactlyTheActiveAndReclaimingEntries) {
  std::array<LeaseEntry, 6> entries{};
  const LeaseTable table{entries};
  take_lease(table, handle_for(0), 0);  // 0: ACTIVE
  const Lease freed = take_lease(table, handle_for(1), 1);
  LeaseTable::free_active(*table.find(freed.token), freed.token, freed.word);  // 1: FREE again
  take_lease(table, handle_for(2), 2);
  std::uint64_t word = 0;
  reclaim(entries[2], word);        // 2: RECLAIMING
  table.park(handle_for(4), 0, 0);  // the first FREE entry, 1: RECLAIMING; 3..5 stay FREE

  std::vector<std::uint32_t> visited;
  table.for_each_held([&](LeaseEntry& entry, std::uint64_t seen) {
    visited.push_back(static_cast<std::uint32_t>(&entry - entries.data()));
    EXPECT_EQ(seen, entry.state.load());
  });
  EXPECT_EQ(visited, (std::vector<std::uint32_t>{0, 1, 2}));
}

TEST_F(LeaseTableTest, EntryOfUnknownKindIsNeitherReservedNorHeldNorReclaimed) {
  entries[0].state.store(LeaseState{0, 0, static_cast<LeaseKind>(9), 0}.encode());
  entries[0].handle.store(handle_for(1).word());
  const std::optional<LeaseTable::Reserved> reserved = table.reserve(0);
  ASSERT_TRUE(reserved);
  EXPECT_EQ(reserved->index, 1u);
  EXPECT_FALSE(table.holds(handle_for(1)));
  std::uint64_t word = 0;
  EXPECT_FALSE(reclaim(entries[0], word));
  EXPECT_FALSE(table.renew(LeaseToken{kLane, 0, 0}, 5000));
}

// --- drop: the message taken was a stale copy ---

TEST_F(LeaseTableTest, DropFreesTheLeaseItActivated) {
  const std::optional<LeaseTable::Reserved> reserved = table.reserve(0);
  ASSERT_TRUE(reserved);
  const std::uint64_t active = table.activate(*reserved, handle_for(5), kDeadline, 0);
  table.drop(*reserved, active);
  const LeaseState state = state_of(entries[reserved->index]);
  EXPECT_EQ(state.kind, LeaseKind::free);
  EXPECT_EQ(state.generation, reserved->generation + 1);
}

TEST_F(LeaseTableTest, DropLeavesALeaseTheDaemonIsReclaiming) {
  const std::optional<LeaseTable::Reserved> reserved = table.reserve(0);
  ASSERT_TRUE(reserved);
  const std::uint64_t active = table.activate(*reserved, handle_for(5), kDeadline, 0);
  std::uint64_t word = 0;
  ASSERT_TRUE(reclaim(entries[reserved->index], word));
  table.drop(*reserved, active);
  EXPECT_EQ(state_of(entries[reserved->index]).kind, LeaseKind::reclaiming);
}

// --- generations and packing ---

TEST_F(LeaseTableTest, GenerationWrapsAtTwentyBitsWithoutAnOldTokenMatching) {
  constexpr std::uint32_t kLast = LeaseState::Generation::kMask;  // 0xfffff
  entries[0].state.store(LeaseState{0, 0, LeaseKind::free, kLast}.encode());
  const Lease last = take_lease(table, handle_for(1));
  ASSERT_EQ(last.token.generation, kLast);
  ASSERT_TRUE(LeaseTable::free_active(*table.find(last.token), last.token, last.word));
  EXPECT_EQ(entries[0].state.load(), LeaseState::decode(last.word).freed());
  EXPECT_EQ(state_of(entries[0]).generation, 0u);

  const Lease wrapped = take_lease(table, handle_for(2));
  ASSERT_EQ(wrapped.token.entry, last.token.entry);
  EXPECT_EQ(wrapped.token.generation, 0u);
  std::uint64_t word = 0;
  EXPECT_FALSE(LeaseTable::active_handle(*table.find(last.token), last.token, word));
  EXPECT_FALSE(LeaseTable::free_active(*table.find(last.token), last.token, last.word));
  // A token's generation is 24 bits wide: the 20-bit generation must not alias its upper values.
  const LeaseToken too_new{kLane, 0, kLast + 1};
  EXPECT_FALSE(LeaseTable::active_handle(*table.find(too_new), too_new, word));
  EXPECT_FALSE(table.renew(too_new, 5000));
  EXPECT_EQ(LeaseTable::active_handle(*table.find(wrapped.token), wrapped.token, word), handle_for(2));
}

TEST(LeaseState, FreedStateIsFreeWithTheNextGenerationAndNothingElse) {
  const LeaseState active{4321, 7, LeaseKind::active, 12};
  EXPECT_EQ(active.freed(), (LeaseState{0, 0, LeaseKind::free, 13}.encode()));
  EXPECT_EQ(LeaseState::decode(LeaseState{0, 0, LeaseKind::reclaiming, 0xfffff}.freed()).generation, 0u);
}

TEST(LeaseState, EveryFieldRoundTripsThroughTheWord) {
  const LeaseState state{0xffffffff, 0xff, LeaseKind::reclaiming, 0xfffff};
  const LeaseState decoded = LeaseState::decode(state.encode());
  EXPECT_EQ(decoded.deadline_ms, 0xffffffffu);
  EXPECT_EQ(decoded.deliveries, 0xff);
  EXPECT_EQ(decoded.kind, LeaseKind::reclaiming);
  EXPECT_EQ(decoded.generation, 0xfffffu);
}

TEST(LeaseToken, WordRoundTripsExtremeValues) {
  for (const LeaseToken token :
       {LeaseToken{0xffff, 0xffffff, 0xfffff}, LeaseToken{0xffff, 0xffffff, 0xffffff}, LeaseToken{0, 0, 0},
        LeaseToken{0xffff, 0, 0}, LeaseToken{0, 0xffffff, 0}, LeaseToken{0, 0, 0xffffff}}) {
    EXPECT_EQ(LeaseToken::from_word(token.word()), token)
        << "lane " << token.lane << " entry " << token.entry << " generation " << token.generation;
  }
}

TEST(LeaseToken, FieldsDoNotOverlapInTheWord) {
  EXPECT_EQ((LeaseToken{0xffff, 0, 0}.word()), 0xffff000000000000u);
  EXPECT_EQ((LeaseToken{0, 0xffffff, 0}.word()), 0x0000ffffff000000u);
  EXPECT_EQ((LeaseToken{0, 0, 0xffffff}.word()), 0x0000000000ffffffu);
}

// --- many threads ---

TEST(LeaseTableThreads, MarkReclaimingIsWonByExactlyOneOfSeveralRacers) {
  constexpr std::uint32_t kRacers = 4, kRounds = 2'000;
  std::array<LeaseEntry, 1> entries{};
  const LeaseTable table{entries};
  // Phases of a round: the lease is ACTIVE; every racer has read its word; every racer is done.
  std::barrier sync(kRacers + 1);
  std::array<bool, kRacers> won{};
  std::array<std::uint64_t, kRacers> words{};

  std::vector<std::thread> racers;
  for (std::uint32_t r = 0; r < kRacers; ++r) {
    racers.emplace_back([&, r] {
      for (std::uint32_t round = 0; round < kRounds; ++round) {
        sync.arrive_and_wait();
        // Read before the race: a racer that read RECLAIMING would be told it already is the mover.
        words[r] = entries[0].state.load();
        sync.arrive_and_wait();
        won[r] = LeaseTable::mark_reclaiming(entries[0], words[r]);
        sync.arrive_and_wait();
      }
    });
  }
  std::uint32_t bad_rounds = 0;
  for (std::uint32_t round = 0; round < kRounds; ++round) {
    take_lease(table, handle_for(round));
    sync.arrive_and_wait();
    sync.arrive_and_wait();
    sync.arrive_and_wait();
    std::uint32_t winners = 0;
    for (std::uint32_t r = 0; r < kRacers; ++r) {
      if (!won[r]) continue;
      ++winners;
      LeaseTable::free_reclaimed(entries[0], words[r]);
    }
    if (winners != 1) ++bad_rounds;
    if (state_of(entries[0]).kind != LeaseKind::free) {
      ADD_FAILURE() << "round " << round << ": the lease was not freed";
      entries[0].state.store(LeaseState::decode(entries[0].state.load()).freed());
    }
  }
  for (std::thread& racer : racers) racer.join();
  EXPECT_EQ(bad_rounds, 0u) << "rounds without exactly one winner, of " << kRounds;
}

TEST(LeaseTableThreads, AckRacingAReclaimIsWonByExactlyOneOfThem) {
  constexpr std::uint32_t kRounds = 50'000;
  std::array<LeaseEntry, 1> entries{};
  const LeaseTable table{entries};
  // The daemon spins on the round number rather than blocking at a barrier: a futex wake-up
  // takes microseconds, far longer than an ack, so the two sides would hardly ever meet.
  std::atomic<std::uint32_t> started{0}, finished{0};
  bool reclaimed = false;
  std::uint64_t reclaiming_word = 0;

  std::thread daemon([&] {
    for (std::uint32_t round = 1; round <= kRounds; ++round) {
      wait_for(started, round);
      reclaimed = reclaim(entries[0], reclaiming_word);
      finished.store(round, std::memory_order_release);
    }
  });
  std::uint32_t bad_rounds = 0, acks_won = 0;
  for (std::uint32_t round = 1; round <= kRounds; ++round) {
    const Lease lease = take_lease(table, handle_for(round));
    started.store(round, std::memory_order_release);
    // The daemon sees the start a cache-line transfer late; an ack delayed by 0 up to well
    // past that, growing from round to round, sweeps every interleaving of the two sides'
    // few steps. Not a wait: each outcome is checked whatever the order.
    for (volatile std::uint32_t spin = 0; spin < round % 1024;) spin = spin + 1;
    const bool acked = ack(table, lease.token);
    wait_for(finished, round);
    acks_won += acked;
    if (acked == reclaimed) ++bad_rounds;
    if (reclaimed) LeaseTable::free_reclaimed(entries[0], reclaiming_word);
    const LeaseState after = state_of(entries[0]);
    if (after.kind != LeaseKind::free ||
        after.generation != ((lease.token.generation + 1) & LeaseState::Generation::kMask)) {
      ADD_FAILURE() << "round " << round << ": the entry was not freed exactly once";
      entries[0].state.store(LeaseState{0, 0, LeaseKind::free, 0}.encode());
    }
  }
  daemon.join();
  EXPECT_EQ(bad_rounds, 0u) << "rounds where both or neither won, of " << kRounds << " (" << acks_won
                            << " won by the ack)";
}

TEST(LeaseTableThreads, RenewalsRacingAnAckNeverStopTheAckAndEndWithIt) {
  constexpr std::uint32_t kRenewers = 2, kRounds = 10'000;
  std::array<LeaseEntry, 1> entries{};
  const LeaseTable table{entries};
  std::atomic<std::uint64_t> token_word{0};
  std::atomic<std::uint32_t> started{0}, renewers_done{0};

  std::vector<std::thread> renewers;
  for (std::uint32_t r = 0; r < kRenewers; ++r) {
    renewers.emplace_back([&, r] {
      for (std::uint32_t round = 1; round <= kRounds; ++round) {
        wait_for(started, round);
        const LeaseToken token = LeaseToken::from_word(token_word.load(std::memory_order_relaxed));
        // Renew until the ack wins: every renew in between must move the deadline.
        for (std::uint32_t deadline = round * 16 + r; table.renew(token, deadline);) {
        }
        renewers_done.fetch_add(1, std::memory_order_acq_rel);
      }
    });
  }
  std::uint32_t failed_acks = 0;
  for (std::uint32_t round = 1; round <= kRounds; ++round) {
    const Lease lease = take_lease(table, handle_for(round));
    token_word.store(lease.token.word(), std::memory_order_relaxed);
    started.store(round, std::memory_order_release);
    for (volatile std::uint32_t spin = 0; spin < round % 512;) spin = spin + 1;
    // The word read before any renewal: free_active must retry past them.
    if (!LeaseTable::free_active(*table.find(lease.token), lease.token, lease.word)) ++failed_acks;
    wait_for(renewers_done, round * kRenewers);
    if (state_of(entries[0]).kind != LeaseKind::free) {
      ADD_FAILURE() << "round " << round << ": a renewal revived the acked lease";
      entries[0].state.store(LeaseState::decode(entries[0].state.load()).freed());
    }
  }
  for (std::thread& renewer : renewers) renewer.join();
  EXPECT_EQ(failed_acks, 0u) << "acks lost to a renewal, of " << kRounds;
}

TEST(LeaseTableThreads, ActiveHandleNeverReturnsTheHandleOfAnotherLeaseOfTheEntry) {
  constexpr std::uint32_t kReaders = 2, kRounds = 50'000;
  std::array<LeaseEntry, 1> entries{};
  const LeaseTable table{entries};
  // Lease generation g always holds handle_for(g): a reader that gets another handle for
  // its token read a later lease's handle under an earlier lease's state.
  std::atomic<std::uint64_t> token_word{0};
  std::atomic<bool> done{false};
  std::atomic<std::uint32_t> mismatches{0}, hits{0};

  std::vector<std::thread> readers;
  for (std::uint32_t r = 0; r < kReaders; ++r) {
    readers.emplace_back([&] {
      while (!done.load(std::memory_order_acquire)) {
        const LeaseToken token = LeaseToken::from_word(token_word.load(std::memory_order_relaxed));
        std::uint64_t word = 0;
        const std::optional<MessageHandle> handle = LeaseTable::active_handle(entries[0], token, word);
        if (!handle) continue;
        hits.fetch_add(1, std::memory_order_relaxed);
        if (*handle != handle_for(token.generation)) mismatches.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  for (std::uint32_t round = 0; round < kRounds; ++round) {
    const std::optional<LeaseTable::Reserved> reserved = table.reserve(0);
    if (!reserved) {
      ADD_FAILURE() << "round " << round << ": the entry was not freed";
      break;
    }
    const std::uint64_t active = table.activate(*reserved, handle_for(reserved->generation), kDeadline, 0);
    const LeaseToken token{kLane, reserved->index, reserved->generation};
    token_word.store(token.word(), std::memory_order_relaxed);
    EXPECT_TRUE(LeaseTable::free_active(entries[0], token, active)) << round;
  }
  done.store(true, std::memory_order_release);
  for (std::thread& reader : readers) reader.join();
  EXPECT_EQ(mismatches.load(), 0u) << "of " << hits.load() << " handles read";
}

}  // namespace
}  // namespace exobus::shm
