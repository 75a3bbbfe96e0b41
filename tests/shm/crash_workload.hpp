#pragma once
// The workload crash tests kill at every fault point, and the checker that proves nothing
// was lost afterwards. The journal lives in memory shared with the test process, so what
// a killed child had done (a send that returned ok, an ack that returned ok) survives it.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "exobus/shm/data_plane.hpp"
#include "scratch_segment.hpp"

namespace exobus::shm::testing {

inline constexpr std::uint32_t kVictim = 2;
inline constexpr std::uint32_t kSurvivor = 3;
inline constexpr std::uint32_t kSender = 1;
inline constexpr std::uint16_t kFanOut[] = {0, 1};

struct Journal {
  static constexpr std::uint32_t kCapacity = 4096;
  struct Taken {
    std::uint32_t id;
    std::uint16_t ring;
    std::uint8_t deliveries;
  };
  std::atomic<std::uint32_t> sent_count;
  std::uint32_t sent[kCapacity];
  std::atomic<std::uint32_t> taken_count;
  Taken taken[kCapacity];
  std::atomic<std::uint32_t> acked_count;  // acks attempted
  Taken acked[kCapacity];

  void record_sent(std::uint32_t id) { sent[sent_count.fetch_add(1)] = id; }
  void record_taken(const Taken& t) { taken[taken_count.fetch_add(1)] = t; }
  void record_acked(const Taken& t) { acked[acked_count.fetch_add(1)] = t; }
};

// Journal in anonymous shared memory, inherited across fork.
class SharedJournal {
 public:
  SharedJournal() {
    void* memory = ::mmap(nullptr, sizeof(Journal), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) throw std::runtime_error("mmap journal");
    journal_ = new (memory) Journal{};
  }
  ~SharedJournal() { ::munmap(journal_, sizeof(Journal)); }
  Journal& operator*() const { return *journal_; }
  Journal* operator->() const { return journal_; }

 private:
  Journal* journal_;
};

inline LayoutSpec crash_spec() {
  LayoutSpec spec = small_spec(256, 2);
  for (RingSpec& ring : spec.rings) ring.delivery_limit = 255;  // nothing may be dropped
  return spec;
}

inline std::uint32_t id_of(std::span<const std::byte> payload) {
  std::uint32_t id = 0;
  if (payload.size() == sizeof(id)) std::memcpy(&id, payload.data(), sizeof(id));
  return id;
}

inline SendStatus send_id(DataPlane& plane, LaneCursor& lane, std::uint32_t id) {
  return plane.send(lane, std::as_bytes(std::span(&id, 1)), kFanOut).status;
}

// What the victim does until it dies (or finishes): send, take, ack, release, hold.
inline void victim_workload(DataPlane& plane, Journal& journal, std::uint32_t rounds) {
  LaneCursor lane{plane.lane_of(kVictim, 0)};
  for (std::uint32_t round = 0; round < rounds; ++round) {
    const std::uint32_t id = 100000 + round;
    if (send_id(plane, lane, id) == SendStatus::ok) journal.record_sent(id);
    const auto ring = static_cast<std::uint16_t>(round % 2);
    const TakeOutcome outcome = plane.take(lane, ring, 0);
    if (outcome.status != TakeOutcomeStatus::ok) continue;
    const Journal::Taken taken{id_of(outcome.delivery.payload), ring, outcome.delivery.deliveries};
    journal.record_taken(taken);
    if (round % 5 == 0) {
      plane.release(outcome.delivery.lease, lane);
    } else if (round % 7 != 0) {  // every 7th stays leased: recovery must requeue it
      // Journaled before the call: a death inside ack may or may not have acknowledged
      // it, and both are correct (the message was delivered and processed).
      journal.record_acked(taken);
      plane.ack(outcome.delivery.lease);
    }
  }
}

// After recovery: a survivor drains both rings, then every message whose send returned ok
// must have been acknowledged on both rings, every repeated delivery must be flagged, and
// the pool, rings and leases must be back to empty.
inline void drain_and_check(DataPlane& plane, Journal& journal, const std::set<std::uint32_t>& preloaded) {
  LaneCursor survivor{plane.lane_of(kSurvivor, 0)};
  std::map<std::pair<std::uint32_t, std::uint16_t>, int> seen;
  std::set<std::pair<std::uint32_t, std::uint16_t>> acked;
  for (std::uint32_t i = 0; i < journal.taken_count.load(); ++i) {
    ++seen[{journal.taken[i].id, journal.taken[i].ring}];
  }
  for (std::uint32_t i = 0; i < journal.acked_count.load(); ++i) {
    acked.insert({journal.acked[i].id, journal.acked[i].ring});
  }
  for (std::uint16_t ring = 0; ring < 2; ++ring) {
    for (;;) {
      const TakeOutcome outcome = plane.take(survivor, ring, 0);
      if (outcome.status == TakeOutcomeStatus::empty) break;
      ASSERT_EQ(outcome.status, TakeOutcomeStatus::ok);
      const std::uint32_t id = id_of(outcome.delivery.payload);
      if (seen[{id, ring}]++ > 0) {
        EXPECT_TRUE(outcome.delivery.redelivered()) << "unflagged duplicate of " << id << " on ring " << ring;
      }
      ASSERT_EQ(plane.ack(outcome.delivery.lease), LeaseStatus::ok);
      acked.insert({id, ring});
    }
  }
  std::set<std::uint32_t> expected = preloaded;
  for (std::uint32_t i = 0; i < journal.sent_count.load(); ++i) expected.insert(journal.sent[i]);
  for (const std::uint32_t id : expected) {
    for (std::uint16_t ring = 0; ring < 2; ++ring) {
      EXPECT_TRUE(acked.contains({id, ring})) << "message " << id << " lost on ring " << ring;
    }
  }
  const BusAudit audit = plane.audit();
  EXPECT_EQ(audit.pool.free, audit.pool.total)
      << "chunks leaked: " << audit.pool.allocated << " allocated, " << audit.pool.published << " published";
  EXPECT_EQ(audit.leased, 0u);
  EXPECT_EQ(audit.queued, 0u);
  EXPECT_EQ(audit.in_flight_slots, 0u);
  // Later traffic flows.
  LaneCursor sender{plane.lane_of(kSender, 0)};
  ASSERT_EQ(send_id(plane, sender, 7), SendStatus::ok);
  for (std::uint16_t ring = 0; ring < 2; ++ring) {
    const TakeOutcome outcome = plane.take(survivor, ring, 0);
    ASSERT_EQ(outcome.status, TakeOutcomeStatus::ok);
    EXPECT_EQ(id_of(outcome.delivery.payload), 7u);
    plane.ack(outcome.delivery.lease);
  }
}

inline std::set<std::uint32_t> preload(DataPlane& plane, std::uint32_t count) {
  LaneCursor sender{plane.lane_of(kSender, 0)};
  std::set<std::uint32_t> ids;
  for (std::uint32_t id = 1; id <= count; ++id) {
    EXPECT_EQ(send_id(plane, sender, id), SendStatus::ok);
    ids.insert(id);
  }
  return ids;
}

inline const FaultPoint kVictimFaultPoints[] = {
    FaultPoint::allocate_claimed,     FaultPoint::send_published, FaultPoint::push_claimed, FaultPoint::push_recorded,
    FaultPoint::send_between_targets, FaultPoint::take_claimed,   FaultPoint::take_leased,  FaultPoint::ack_cleared,
    FaultPoint::reclaim_marked,       FaultPoint::reclaim_pushed,
};

}  // namespace exobus::shm::testing
