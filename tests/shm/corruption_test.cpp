// A hostile or broken peer scribbles over the shared words of a live bus while honest
// lanes keep sending, taking, acknowledging and recovering. The promise under test
// (ARCHITECTURE.md, "every value read from shared memory is validated"): corruption may
// make messages fail, never crash, read out of bounds (run it in the ASan build too) or
// hang a caller. Errors are expected and counted.
//
// The run is reproducible: the seed is printed and EXOBUS_FUZZ_SEED=<seed> replays it.
// A watchdog thread fails the test (and names the call, the seed and the round) if a
// single call does not return within a few seconds.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "scratch_segment.hpp"

namespace exobus::shm {
namespace {

using testing::ScratchSegment;

// Fails the process if one call runs longer than `limit`: a spinning call never returns to
// let the test fail on its own. Every call is a few microseconds, so seconds mean a hang.
class Watchdog {
 public:
  explicit Watchdog(std::chrono::seconds limit) : limit_(limit), thread_([this] { run(); }) {}
  ~Watchdog() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }

  void describe(std::uint64_t seed, std::uint64_t round) {
    seed_.store(seed, std::memory_order_relaxed);
    round_.store(round, std::memory_order_relaxed);
  }
  // The name must outlive the call (string literals).
  template <class Call>
  decltype(auto) guard(const char* name, Call&& call) {
    operation_.store(name, std::memory_order_relaxed);
    started_ns_.store(now_ns(), std::memory_order_release);
    struct Done {
      std::atomic<std::int64_t>& started;
      ~Done() { started.store(0, std::memory_order_release); }
    } done{started_ns_};
    return call();
  }

 private:
  static std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  void run() {
    std::unique_lock lock(mutex_);
    while (!wake_.wait_for(lock, std::chrono::milliseconds(50), [this] { return stopping_; })) {
      const std::int64_t started = started_ns_.load(std::memory_order_acquire);
      if (started != 0 && now_ns() - started > std::chrono::nanoseconds(limit_).count()) {
        std::fprintf(stderr,
                     "FAILED: %s did not return within %llds (seed %llu, round %llu): "
                     "an unbounded loop on corrupt shared memory\n",
                     operation_.load(std::memory_order_relaxed), static_cast<long long>(limit_.count()),
                     static_cast<unsigned long long>(seed_.load(std::memory_order_relaxed)),
                     static_cast<unsigned long long>(round_.load(std::memory_order_relaxed)));
        std::fflush(stderr);
        std::_Exit(1);
      }
    }
  }

  std::chrono::seconds limit_;
  std::atomic<const char*> operation_{""};
  std::atomic<std::int64_t> started_ns_{0};
  std::atomic<std::uint64_t> seed_{0}, round_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

std::uint64_t fuzz_seed() {
  if (const char* text = std::getenv("EXOBUS_FUZZ_SEED")) return std::strtoull(text, nullptr, 0);
  return (std::uint64_t{std::random_device{}()} << 32) | std::random_device{}();
}

LayoutSpec fuzz_spec() {
  LayoutSpec spec;
  spec.size_classes = {{256, 64, 0, 0, 0}, {1024, 8, 0, 0, 0}};
  spec.rings = {{16, 50, 3, 2}, {8, 50, 2, 2}, {8, 1000, 1, kNoRing}};  // ring 2: dead letters
  spec.max_instances = 4;
  spec.lanes_per_instance = 2;
  spec.leases_per_lane = 8;
  return spec;
}

// The hostile peer: writes into every kind of shared word the data plane reads, found the
// way any process would find them (segment accessors and layout offsets).
class HostilePeer {
 public:
  HostilePeer(const Segment& segment, std::mt19937_64& random) : segment_(segment), random_(random) {}

  // Returns what it hit, for the tally.
  const char* strike() {
    std::atomic<std::uint64_t>* word64 = nullptr;
    std::atomic<std::uint32_t>* word32 = nullptr;
    std::atomic<std::uint16_t>* word16 = nullptr;
    const char* target = "";
    switch (pick(9)) {
      case 0: {
        RingSlot& slot = slots(pick(segment_.ring_count()))[pick_slot()];
        word64 = pick(2) == 0 ? &slot.state : &slot.handle;
        target = "ring slot";
        break;
      }
      case 1: {
        RingHeader& header = ring_header(pick(segment_.ring_count()));
        word64 = pick(2) == 0 ? &header.head : &header.tail;
        target = "ring head/tail";
        break;
      }
      case 2:
      case 3: {
        LeaseEntry& entry = segment_.leases(pick(segment_.lane_count()))[pick(segment_.layout().leases_per_lane)];
        const std::uint32_t field = pick(3);
        if (field == 0) word64 = &entry.state;
        if (field == 1) word64 = &entry.handle;
        if (field == 2) word32 = &entry.ring;
        target = "lease entry";
        break;
      }
      case 4: {
        LaneHeader& lane = segment_.lane(pick(segment_.lane_count()));
        const std::uint32_t field = pick(4);
        if (field == 0) word64 = &lane.send_handle;
        if (field == 1) word32 = &lane.target_count;
        if (field == 2) word16 = &lane.target_rings[pick(kMaxTargets)];
        if (field == 3) word64 = &lane.claimed[pick(kMaxTargets)];
        target = "lane send record";
        break;
      }
      default: {
        ChunkHeader& chunk = chunk_header(pick(chunk_count()));
        if (pick(3) == 0) {
          word32 = &chunk.length;
        } else {
          word64 = &chunk.state;
        }
        target = "chunk header";
        break;
      }
    }
    if (word64 != nullptr)
      word64->store(hostile_value(word64->load(std::memory_order_relaxed)), std::memory_order_release);
    if (word32 != nullptr)
      word32->store(static_cast<std::uint32_t>(hostile_value(word32->load(std::memory_order_relaxed))),
                    std::memory_order_release);
    if (word16 != nullptr)
      word16->store(static_cast<std::uint16_t>(hostile_value(word16->load(std::memory_order_relaxed))),
                    std::memory_order_release);
    return target;
  }

 private:
  std::uint32_t pick(std::uint32_t bound) { return static_cast<std::uint32_t>(random_() % bound); }
  std::uint32_t pick_slot() { return pick(64); }  // masked below by the ring's capacity

  // Half the time a wild value; otherwise a near miss of the current one (a flipped bit, a
  // small step, a field of a packed word replaced), which looks valid enough to get past
  // the first checks and exercise the deeper ones.
  std::uint64_t hostile_value(std::uint64_t current) {
    switch (pick(6)) {
      case 0: return random_();
      case 1: return current ^ (std::uint64_t{1} << pick(64));
      case 2: return current + 1 + pick(4);
      case 3: return current - 1 - pick(4);
      case 4: {
        const std::uint32_t shift = 8 * pick(8);
        return (current & ~(std::uint64_t{0xff} << shift)) | (std::uint64_t{pick(256)} << shift);
      }
      default: return pick(2) == 0 ? 0 : ~std::uint64_t{0};
    }
  }

  RingHeader& ring_header(std::uint32_t ring) const {
    return *reinterpret_cast<RingHeader*>(segment_.base() + segment_.ring_descriptor(ring).offset);
  }
  struct SlotsOf {
    RingSlot* first;
    std::uint32_t capacity;
    RingSlot& operator[](std::uint32_t index) const { return first[index % capacity]; }
  };
  SlotsOf slots(std::uint32_t ring) const {
    return {reinterpret_cast<RingSlot*>(&ring_header(ring) + 1), segment_.ring_descriptor(ring).capacity};
  }
  std::uint32_t chunk_count() const {
    std::uint32_t count = 0;
    for (const SizeClassLayout& size_class : segment_.layout().size_classes) count += size_class.chunk_count;
    return count;
  }
  ChunkHeader& chunk_header(std::uint32_t chunk) const {
    for (const SizeClassLayout& size_class : segment_.layout().size_classes) {
      if (chunk < size_class.chunk_count) {
        return *reinterpret_cast<ChunkHeader*>(segment_.base() + size_class.offset +
                                               chunk * (kChunkHeaderBytes + size_class.chunk_size));
      }
      chunk -= size_class.chunk_count;
    }
    return *reinterpret_cast<ChunkHeader*>(segment_.base() + segment_.layout().size_classes[0].offset);
  }

  const Segment& segment_;
  std::mt19937_64& random_;
};

class Tally {
 public:
  void count(const std::string& what) { ++counts_[what]; }
  void print(std::uint64_t seed) const {
    std::printf("seed %llu (replay: EXOBUS_FUZZ_SEED=%llu)\n", static_cast<unsigned long long>(seed),
                static_cast<unsigned long long>(seed));
    for (const auto& [what, count] : counts_) {
      std::printf("  %-36s %llu\n", what.c_str(), static_cast<unsigned long long>(count));
    }
  }
  std::uint64_t operator[](const std::string& what) const {
    const auto found = counts_.find(what);
    return found == counts_.end() ? 0 : found->second;
  }

 private:
  std::map<std::string, std::uint64_t> counts_;
};

const char* name_of(SendStatus status) {
  switch (status) {
    case SendStatus::ok: return "send ok";
    case SendStatus::too_large: return "send too_large";
    case SendStatus::pool_exhausted: return "send pool_exhausted";
    case SendStatus::queue_full: return "send queue_full";
    case SendStatus::no_targets: return "send no_targets";
    case SendStatus::too_many_targets: return "send too_many_targets";
    case SendStatus::corrupted: return "send corrupted";
  }
  return "send ?";
}
const char* name_of(TakeOutcomeStatus status) {
  switch (status) {
    case TakeOutcomeStatus::ok: return "take ok";
    case TakeOutcomeStatus::empty: return "take empty";
    case TakeOutcomeStatus::no_free_lease: return "take no_free_lease";
    case TakeOutcomeStatus::corrupted: return "take corrupted";
  }
  return "take ?";
}
std::string name_of(const char* operation, LeaseStatus status) {
  switch (status) {
    case LeaseStatus::ok: return std::string(operation) + " ok";
    case LeaseStatus::late: return std::string(operation) + " late";
    case LeaseStatus::queue_full: return std::string(operation) + " queue_full";
  }
  return std::string(operation) + " ?";
}

// The honest side: several lanes of several instances doing everything the data plane
// offers, each call on the watchdog, each delivered payload read to its last byte.
class HonestLanes {
 public:
  HonestLanes(DataPlane& plane, std::mt19937_64& random, Watchdog& watchdog, Tally& tally)
      : plane_(plane), random_(random), watchdog_(watchdog), tally_(tally) {
    for (std::uint32_t instance = 1; instance < 4; ++instance) {
      for (std::uint32_t k = 0; k < 2; ++k) lanes_.push_back({plane.lane_of(instance, k)});
    }
  }

  void act() {
    LaneCursor& lane = lanes_[pick(static_cast<std::uint32_t>(lanes_.size()))];
    const std::uint32_t now = now_ms_ += pick(20);
    switch (pick(13)) {
      case 0:
      case 1:
      case 2: send(lane); break;
      case 3:
      case 4:
      case 5: take(lane, now); break;
      case 6: settle("ack", [&](const LeaseToken& token) { return plane_.ack(token); }); break;
      case 7: settle("release", [&](const LeaseToken& token) { return plane_.release(token, lane); }); break;
      case 8: settle("renew", [&](const LeaseToken& token) { return plane_.renew(token, now); }); break;
      case 9: settle("reject", [&](const LeaseToken& token) { return plane_.reject(token, lane); }); break;
      case 10: recover(now); break;
      case 11: {
        const auto ring = static_cast<std::uint16_t>(pick(4));  // 3 is past the end
        settle("move", [&](const LeaseToken& token) { return plane_.move(token, ring, lane); });
        break;
      }
      default: {
        const BusAudit audit = watchdog_.guard("audit", [&] { return plane_.audit(); });
        audit_sink_ += audit.queued + audit.leased;
        tally_.count("audit");
        break;
      }
    }
  }

 private:
  std::uint32_t pick(std::uint32_t bound) { return static_cast<std::uint32_t>(random_() % bound); }

  void send(LaneCursor& lane) {
    // Mostly valid targets; now and then a ring index past the end or a fan-out.
    std::uint16_t targets[3] = {static_cast<std::uint16_t>(pick(2)), 1, 0};
    std::size_t target_count = 1;
    if (pick(8) == 0) targets[0] = static_cast<std::uint16_t>(pick(8));
    if (pick(6) == 0) target_count = 2 + pick(2);
    std::string payload(1 + pick(pick(4) == 0 ? 1024 : 200), static_cast<char>('a' + pick(26)));
    const SendResult result = watchdog_.guard(
        "send", [&] { return plane_.send(lane, testing::bytes_of(payload), std::span(targets, target_count)); });
    tally_.count(name_of(result.status));
  }

  void take(LaneCursor& lane, std::uint32_t now) {
    const std::uint16_t ring = static_cast<std::uint16_t>(pick(10) == 0 ? pick(6) : pick(3));
    const TakeOutcome outcome = watchdog_.guard("take", [&] { return plane_.take(lane, ring, now); });
    tally_.count(name_of(outcome.status));
    if (outcome.status != TakeOutcomeStatus::ok) return;
    const std::span<const std::byte> payload = outcome.delivery.payload;
    // The payload view must lie inside the segment, within one chunk's capacity.
    const std::byte* begin = plane_.segment().base();
    const std::byte* end = begin + plane_.segment().layout().total_size;
    ASSERT_LE(payload.size(), plane_.largest_payload());
    ASSERT_TRUE(payload.empty() || (payload.data() >= begin && payload.data() + payload.size() <= end));
    // Touch every byte: ASan reports any read outside the mapping.
    unsigned checksum = 0;
    for (const std::byte b : payload) checksum += static_cast<unsigned>(b);
    checksum_ += checksum;
    held_.push_back(outcome.delivery.lease);
  }

  template <class Settle>
  void settle(const char* operation, Settle&& call) {
    LeaseToken token;
    if (held_.empty() || pick(8) == 0) {
      // A forged token: any lane, entry and generation, in range or not.
      token = {static_cast<std::uint16_t>(random_()), pick(16), pick(1u << 20)};
    } else {
      const std::size_t index = pick(static_cast<std::uint32_t>(held_.size()));
      token = held_[index];
      held_.erase(held_.begin() + static_cast<std::ptrdiff_t>(index));
    }
    const LeaseStatus status = watchdog_.guard(operation, [&] { return call(token); });
    tally_.count(name_of(operation, status));
  }

  void recover(std::uint32_t now) {
    LaneCursor& daemon = daemon_;
    if (pick(2) == 0) {
      const std::uint32_t instance = 1 + pick(3);
      watchdog_.guard("recover_instance", [&] { return Recovery(plane_, daemon).recover_instance(instance); });
      tally_.count("recover_instance");
      // The recovered instance's leases are gone: its held tokens are now stale (kept on
      // purpose, so later acks exercise the late path).
    } else {
      watchdog_.guard("reclaim_expired", [&] { return Recovery(plane_, daemon).reclaim_expired(now + pick(200)); });
      tally_.count("reclaim_expired");
    }
  }

  DataPlane& plane_;
  std::mt19937_64& random_;
  Watchdog& watchdog_;
  Tally& tally_;
  std::vector<LaneCursor> lanes_;
  LaneCursor daemon_{0};
  std::vector<LeaseToken> held_;
  std::uint32_t now_ms_ = 1000;
  unsigned checksum_ = 0;
  std::uint64_t audit_sink_ = 0;  // keeps the audit's scans from being optimised away
};

TEST(CorruptedSegment, HostileWritesMakeCallsFailButNeverCrashOrHang) {
  const std::uint64_t seed = fuzz_seed();
  std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
  std::mt19937_64 random(seed);
  Watchdog watchdog(std::chrono::seconds(5));
  Tally tally;
  // Epochs on fresh segments: a segment corrupted for too long fails every call at the
  // first check, and the deeper paths would go untested.
  // The hostile peer strikes every round in some epochs, every fourth in others.
  constexpr std::uint32_t kEpochs = 100, kRoundsPerEpoch = 200, kCallsPerRound = 6;
  for (std::uint32_t epoch = 0; epoch < kEpochs && !HasFatalFailure(); ++epoch) {
    ScratchSegment bus(fuzz_spec(), "corruption");
    HostilePeer hostile(bus.segment(), random);
    HonestLanes honest(bus.plane(), random, watchdog, tally);
    const std::uint32_t strike_every = 1 + epoch % 4;
    for (std::uint32_t round = 0; round < kRoundsPerEpoch && !HasFatalFailure(); ++round) {
      watchdog.describe(seed, std::uint64_t{epoch} * kRoundsPerEpoch + round);
      if (round % strike_every == 0) tally.count(std::string("hostile write: ") + hostile.strike());
      for (std::uint32_t call = 0; call < kCallsPerRound && !HasFatalFailure(); ++call) honest.act();
    }
  }
  tally.print(seed);
  // The run did real work on both sides, not just bounce off the first check.
  EXPECT_GT(tally["take ok"], 1000u);
  EXPECT_GT(tally["ack ok"], 100u);
  EXPECT_GT(tally["take corrupted"] + tally["send corrupted"], 0u);
}

// Regressions found by the test above, pinned down deterministically: a head or tail
// overwritten with a position many laps away from the slots made take() and push()
// "help" it forward one position at a time, up to 2^31 laps: a hang, not an error.
struct CorruptRingTest : ::testing::Test {
  ScratchSegment bus{testing::small_spec(64)};
  DataPlane& plane = bus.plane();
  LaneCursor lane{plane.lane_of(1, 0)};
  Watchdog watchdog{std::chrono::seconds(5)};
  RingHeader& ring = *reinterpret_cast<RingHeader*>(bus.segment().base() + bus.segment().ring_descriptor(0).offset);
  const std::uint16_t targets[1] = {0};
};

TEST_F(CorruptRingTest, TakeWithAHeadLapsBehindTheSlotsReturnsCorrupted) {
  ASSERT_EQ(plane.send(lane, testing::bytes_of("m"), targets).status, SendStatus::ok);
  // Lap 2^31 + 1: the slots (lap 0) look 2^31 - 1 laps ahead of it.
  ring.head.store(std::uint64_t{0x80000001} * 64, std::memory_order_relaxed);
  const TakeOutcome outcome = watchdog.guard("take", [&] { return plane.take(lane, 0, 0); });
  EXPECT_EQ(outcome.status, TakeOutcomeStatus::corrupted);
}

TEST_F(CorruptRingTest, SendWithATailLapsBehindTheSlotsReturnsCorrupted) {
  ring.tail.store(std::uint64_t{0x80000001} * 64, std::memory_order_relaxed);  // as above
  const SendResult result = watchdog.guard("send", [&] { return plane.send(lane, testing::bytes_of("m"), targets); });
  EXPECT_EQ(result.status, SendStatus::corrupted);
  // The refused message's chunk went back to the pool.
  EXPECT_EQ(plane.audit().pool.free, plane.audit().pool.total);
}

TEST_F(CorruptRingTest, TakeStillHelpsAHeadOneLapBehindPastConsumedSlots) {
  // The boundary of the check above: slots one lap ahead of the head are what consumers
  // that took a message and died before moving the head leave behind, so take must still
  // walk forward past them to the next message, not refuse.
  for (int i = 0; i < 64; ++i) {
    ASSERT_EQ(plane.send(lane, testing::bytes_of("m"), targets).status, SendStatus::ok);
    const TakeOutcome outcome = plane.take(lane, 0, 0);
    ASSERT_EQ(outcome.status, TakeOutcomeStatus::ok);
    plane.ack(outcome.delivery.lease);
  }
  ASSERT_EQ(plane.send(lane, testing::bytes_of("next"), targets).status, SendStatus::ok);
  ring.head.store(0, std::memory_order_relaxed);
  const TakeOutcome outcome = watchdog.guard("take", [&] { return plane.take(lane, 0, 0); });
  ASSERT_EQ(outcome.status, TakeOutcomeStatus::ok);
  EXPECT_EQ(testing::text_of(outcome.delivery.payload), "next");
}

}  // namespace
}  // namespace exobus::shm
