// A hostile or broken instance of one service type scribbles over the shared words its
// type may write (its tenant memory, the sender halves of the links from it, the receiver
// halves of the links to it) while honest instances of both types keep sending, taking,
// acknowledging and recovering. The promise under test (data_plane.hpp, channel.hpp): such
// writes may make calls fail, never crash, read out of bounds (run it in the ASan build
// too) or hang a caller; and a message delivered through a link whose sender half nobody
// scribbled on is one its sender sent, byte for byte. Errors are expected and counted.
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
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "scratch_bus.hpp"

namespace exobus::shm {
namespace {

using testing::BusWords;
using testing::kCommandLink;
using testing::kReceiverType;
using testing::kReplyLink;
using testing::kSenderType;
using testing::ScratchBus;

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

constexpr std::uint32_t kInstances = 3;

testing::ScratchOptions corruption_options() {
  testing::ScratchOptions options;
  options.channel_capacity = 16;
  options.reply_capacity = 8;
  options.instances = kInstances;
  options.lanes_per_instance = 3;
  options.leases_per_lane = 8;
  options.delivery_limit = 3;
  options.size_classes = {{256, 64}, {1024, 8}};
  return options;
}

// The link each type takes from and sends on (scratch_bus.hpp).
std::uint32_t incoming_link(std::uint16_t type) { return type == kReceiverType ? kCommandLink : kReplyLink; }
std::uint32_t outgoing_link(std::uint16_t type) { return type == kSenderType ? kCommandLink : kReplyLink; }

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

// The hostile instance: an instance of `type` that writes wild or near-miss values into
// the words its type may write, found the way any process finds them (BusWords).
class HostileInstance {
 public:
  HostileInstance(ScratchBus& bus, std::uint16_t type, std::mt19937_64& random)
      : bus_(bus), words_(bus.memory()), type_(type), random_(random) {}

  // Returns what it hit, for the tally.
  const char* strike() {
    switch (pick(4)) {
      case 0: return strike_sender_half(outgoing_link(type_));
      case 1: return strike_receiver_half(incoming_link(type_));
      default: return strike_tenant();
    }
  }

 private:
  const char* strike_sender_half(std::uint32_t link) {
    const BusWords::ChannelWords channel = words_.channel(link, pick(words_.reply_channels(link) + 1));
    switch (pick(4)) {
      case 0: {
        ProducerSlot& slot = channel.producers[pick(channel.capacity)];
        scribble(pick(2) == 0 ? slot.state : slot.handle);
        return "producer slot";
      }
      case 1: scribble(channel.tail->tail); return "channel tail";
      default: {
        ChunkHeader& chunk = words_.chunk(link, pick(words_.chunk_count(link)));
        if (pick(3) == 0) {
          scribble(chunk.length);
        } else {
          scribble(chunk.state);
        }
        return "chunk header";
      }
    }
  }
  const char* strike_receiver_half(std::uint32_t link) {
    const BusWords::ChannelWords channel = words_.channel(link, pick(words_.reply_channels(link) + 1));
    switch (pick(3)) {
      case 0: scribble(channel.consumers[pick(channel.capacity)].state); return "consumer slot";
      case 1: scribble(channel.head->head); return "channel head";
      default: scribble(words_.ack(link, pick(words_.chunk_count(link)))); return "ack word";
    }
  }
  const char* strike_tenant() {
    Tenant& tenant = bus_.tenant(type_);
    const auto lane = static_cast<std::uint16_t>(pick(tenant.lane_count()));
    switch (pick(4)) {
      case 0: {
        LeaseEntry& entry = tenant.leases(lane).entry(pick(tenant.shape().leases_per_lane));
        scribble(pick(2) == 0 ? entry.state : entry.handle);
        return "lease entry";
      }
      case 1: {
        SendRecord& record = tenant.send_record(lane);
        SendTarget& target = record.targets[pick(4)];
        switch (pick(6)) {
          case 0: scribble(record.phase); break;
          case 1: scribble(record.target_count); break;
          case 2: scribble(target.handle); break;
          case 3: scribble(target.claimed); break;
          case 4: scribble(target.link); break;
          default: scribble(target.channel); break;
        }
        return "send record";
      }
      default: {
        const BusWords::RingWords ring = words_.ring(type_, pick(3) == 0);
        switch (pick(3)) {
          case 0: scribble(pick(2) == 0 ? ring.header->head : ring.header->tail); break;
          default: {
            RingSlot& slot = ring.slots[pick(ring.capacity)];
            scribble(pick(2) == 0 ? slot.state : slot.handle);
            break;
          }
        }
        return "retry or dead-letter ring";
      }
    }
  }

  template <class Word>
  void scribble(std::atomic<Word>& word) {
    word.store(static_cast<Word>(hostile_value(word.load(std::memory_order_relaxed))), std::memory_order_release);
  }
  std::uint32_t pick(std::uint32_t bound) { return static_cast<std::uint32_t>(random_() % bound); }
  // Half the time a wild value; otherwise a near miss of the current one (a flipped bit, a
  // small step, a byte of a packed word replaced), which looks valid enough to get past
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

  ScratchBus& bus_;
  BusWords words_;
  std::uint16_t type_;
  std::mt19937_64& random_;
};

// Every message an honest instance sends is "<link>:<seq>:" then filler that depends on
// seq, padded to a random length; the sent ones are remembered per link, with their length.
std::string message_text(std::uint32_t link, std::uint64_t seq, std::size_t length) {
  std::string text = std::to_string(link) + ":" + std::to_string(seq) + ":";
  while (text.size() < length) text.push_back(static_cast<char>('a' + (seq + text.size()) % 26));
  return text;
}

const char* name_of(SendStatus status) {
  switch (status) {
    case SendStatus::ok: return "send ok";
    case SendStatus::queue_full: return "send queue_full";
    case SendStatus::corrupted: return "send corrupted";
    case SendStatus::too_many_targets: return "send too_many_targets";
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

// The honest side: every instance of both types (the hostile one aside, which only
// scribbles) doing everything the data plane offers, each call on the watchdog, each
// delivered payload copied out and read to its last byte.
class HonestInstances {
 public:
  HonestInstances(ScratchBus& bus, std::uint16_t hostile_type, std::mt19937_64& random, Watchdog& watchdog,
                  Tally& tally)
      : bus_(bus), hostile_type_(hostile_type), random_(random), watchdog_(watchdog), tally_(tally) {}

  void act() {
    const auto type = static_cast<std::uint16_t>(pick(2));
    DataPlane plane = bus_.plane(type, pick(kInstances));
    const std::uint32_t now = now_ms_ += pick(20);
    LaneCursor lane{plane.lane(kCommandLane)};
    switch (pick(13)) {
      case 0:
      case 1:
      case 2: send(plane); break;
      case 3:
      case 4:
      case 5:
      case 6: take(plane, now); break;
      case 7: settle(type, "ack", [&](const LeaseToken& token) { return plane.ack(token); }); break;
      case 8: settle(type, "release", [&](const LeaseToken& token) { return plane.release(token, lane); }); break;
      case 9: settle(type, "renew", [&](const LeaseToken& token) { return plane.renew(token, now); }); break;
      case 10: settle(type, "reject", [&](const LeaseToken& token) { return plane.reject(token, lane); }); break;
      default: recover(type, now); break;
    }
  }

 private:
  std::uint32_t pick(std::uint32_t bound) { return static_cast<std::uint32_t>(random_() % bound); }

  void send(DataPlane& plane) {
    const std::uint32_t link_index = outgoing_link(plane.type());
    Link& link = bus_.link(link_index);
    // Mostly the type channel; now and then a reply channel, in range or one past it.
    const std::uint32_t channel = pick(3) == 0 ? 1 + pick(kInstances + 1) : kTypeChannel;
    const std::uint64_t seq = next_seq_++;
    const std::string text = message_text(link_index, seq, 12 + pick(pick(4) == 0 ? 1000 : 200));
    const Allocation allocation = watchdog_.guard("allocate", [&] { return plane.allocate(link, text.size()); });
    if (allocation.status != PoolStatus::ok) {
      tally_.count("allocate exhausted");
      return;
    }
    std::memcpy(allocation.buffer.data(), text.data(), text.size());
    const Part part{{&link, channel}, allocation.handle, static_cast<std::uint32_t>(text.size())};
    LaneCursor lane{plane.lane(kFirstSendLane)};
    const SendResult result = watchdog_.guard("publish", [&] { return plane.publish(lane, std::span(&part, 1)); });
    // A reply channel past the last instance is the caller's mistake, refused up front.
    tally_.count(channel > kInstances ? std::string("send to no channel: ") + name_of(result.status)
                                      : std::string(name_of(result.status)));
    if (result.status == SendStatus::ok) {
      sent_[link_index][seq] = text.size();
    } else {
      plane.abandon(link, allocation.handle);
    }
  }

  void take(DataPlane& plane, std::uint32_t now) {
    Link& link = bus_.link(incoming_link(plane.type()));
    LaneCursor command_lane{plane.lane(kCommandLane)}, reply_lane{plane.lane(kReplyLane)};
    TakeOutcome outcome{};
    switch (pick(3)) {
      case 0:
        outcome = watchdog_.guard("take", [&] { return plane.take(command_lane, link, link.type_channel(), now); });
        break;
      case 1:
        outcome = watchdog_.guard(
            "take reply", [&] { return plane.take(reply_lane, link, *link.reply_channel(plane.member()), now); });
        break;
      default: outcome = watchdog_.guard("take_retry", [&] { return plane.take_retry(command_lane, now); }); break;
    }
    tally_.count(name_of(outcome.status));
    if (outcome.status != TakeOutcomeStatus::ok) return;
    check_delivery(plane, outcome.delivery);
    held_[plane.type()].push_back(outcome.delivery.lease);
  }

  void check_delivery(const DataPlane& plane, const Delivery& delivery) {
    // Only through a link to this type, and from a chunk of that link's pool.
    ASSERT_EQ(delivery.link->receiver(), plane.type());
    ASSERT_EQ(delivery.handle.link(), delivery.link->index());
    const Region* half = bus_.memory().region(RegionKind::sender_half, delivery.link->index());
    const std::span<const std::byte> payload = delivery.payload;
    ASSERT_LE(payload.size(), delivery.link->pool().largest_chunk());
    ASSERT_TRUE(payload.empty() ||
                (payload.data() >= half->base() && payload.data() + payload.size() <= half->base() + half->size()));
    // Copy it out (ASan reports any read outside the mapping), then ask whether the copy is
    // the handle's message, as the client library does.
    const std::string copy = testing::text_of(payload);
    if (!DataPlane::intact(delivery)) {
      tally_.count("delivery not intact");
      return;
    }
    if (delivery.link->sender() == hostile_type_) {
      tally_.count("delivery from the hostile type");
      return;  // its sender may write anything into its own chunks
    }
    // An honest sender's message, whatever the hostile receiver-side instance wrote.
    const std::uint32_t link = delivery.link->index();
    const std::size_t colon = copy.find(':', copy.find(':') + 1);
    ASSERT_NE(colon, std::string::npos) << "a delivered message that was never sent: " << copy;
    const std::uint64_t seq = std::strtoull(copy.c_str() + copy.find(':') + 1, nullptr, 10);
    const auto sent = sent_[link].find(seq);
    ASSERT_NE(sent, sent_[link].end()) << "a delivered message that was never sent: " << copy;
    ASSERT_EQ(copy, message_text(link, seq, sent->second)) << "a delivered message not as it was sent";
    tally_.count("delivery checked against what was sent");
  }

  template <class Settle>
  void settle(std::uint16_t type, const char* operation, Settle&& call) {
    std::vector<LeaseToken>& held = held_[type];
    LeaseToken token;
    if (held.empty() || pick(8) == 0) {
      // A forged token: any lane, entry and generation, in range or not.
      token = {static_cast<std::uint16_t>(random_()), pick(16), pick(1u << 20)};
    } else {
      const std::size_t index = pick(static_cast<std::uint32_t>(held.size()));
      token = held[index];
      held.erase(held.begin() + static_cast<std::ptrdiff_t>(index));
    }
    const LeaseStatus status = watchdog_.guard(operation, [&] { return call(token); });
    tally_.count(name_of(operation, status));
  }

  void recover(std::uint16_t type, std::uint32_t now) {
    Recovery recovery(bus_.memory());
    switch (pick(3)) {
      case 0:
        // The recovered instance's leases are gone: its held tokens are now stale (kept on
        // purpose, so later acks exercise the late path).
        watchdog_.guard("recover_instance", [&] { return recovery.recover_instance(type, pick(kInstances)); });
        tally_.count("recover_instance");
        break;
      case 1:
        watchdog_.guard("reclaim_expired", [&] { return recovery.reclaim_expired(now + pick(2000)); });
        tally_.count("reclaim_expired");
        break;
      default:
        watchdog_.guard("recover_daemon", [&] { return recovery.recover_daemon(); });
        tally_.count("recover_daemon");
        break;
    }
  }

  ScratchBus& bus_;
  std::uint16_t hostile_type_;
  std::mt19937_64& random_;
  Watchdog& watchdog_;
  Tally& tally_;
  std::vector<LeaseToken> held_[2];
  std::map<std::uint64_t, std::size_t> sent_[2];  // per link: seq -> length
  std::uint64_t next_seq_ = 0;
  std::uint32_t now_ms_ = 1000;
};

TEST(CorruptedMemory, HostileWritesMakeCallsFailButNeverCrashHangOrForgeAMessage) {
  const std::uint64_t seed = fuzz_seed();
  std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
  std::mt19937_64 random(seed);
  Watchdog watchdog(std::chrono::seconds(5));
  Tally tally;
  // Epochs on fresh memory: memory corrupted for too long fails every call at the first
  // check, and the deeper paths would go untested. The hostile instance belongs to the
  // sending type in even epochs, the receiving type in odd ones; it strikes every round in
  // some epochs, every fourth in others.
  constexpr std::uint32_t kEpochs = 400, kRoundsPerEpoch = 200, kCallsPerRound = 6;
  for (std::uint32_t epoch = 0; epoch < kEpochs && !HasFatalFailure(); ++epoch) {
    ScratchBus bus(corruption_options(), "corruption");
    const auto hostile_type = static_cast<std::uint16_t>(epoch % 2);
    HostileInstance hostile(bus, hostile_type, random);
    HonestInstances honest(bus, hostile_type, random, watchdog, tally);
    const std::uint32_t strike_every = 1 + (epoch / 2) % 4;
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
  EXPECT_GT(tally["delivery checked against what was sent"], 500u);
  EXPECT_GT(tally["take corrupted"] + tally["send corrupted"], 0u);
}

// Regressions pinned down deterministically: a head or tail overwritten with a position
// many laps away from the slots made take() and claim() "help" it forward one position at
// a time, up to 2^31 laps: a hang, not an error.
struct CorruptChannelTest : ::testing::Test {
  ScratchBus bus{corruption_options(), "corruption"};
  BusWords words{bus.memory()};
  DataPlane sender = bus.plane(kSenderType, 0);
  DataPlane receiver = bus.plane(kReceiverType, 0);
  Link& link = bus.link(kCommandLink);
  LaneCursor send_lane{sender.lane(kFirstSendLane)};
  LaneCursor take_lane{receiver.lane(kCommandLane)};
  BusWords::ChannelWords channel = words.channel(kCommandLink, kTypeChannel);
  Watchdog watchdog{std::chrono::seconds(5)};

  SendStatus send(const std::string& text) {
    const Allocation allocation = sender.allocate(link, text.size());
    EXPECT_EQ(allocation.status, PoolStatus::ok);
    std::memcpy(allocation.buffer.data(), text.data(), text.size());
    const Part part{{&link, kTypeChannel}, allocation.handle, static_cast<std::uint32_t>(text.size())};
    const SendStatus status =
        watchdog.guard("publish", [&] { return sender.publish(send_lane, std::span(&part, 1)).status; });
    if (status != SendStatus::ok) sender.abandon(link, allocation.handle);
    return status;
  }
  TakeOutcome take() {
    return watchdog.guard("take", [&] { return receiver.take(take_lane, link, link.type_channel(), 0); });
  }
  // Lap 2^31 + 1: the slots (lap 0) look 2^31 - 1 laps ahead of it.
  std::uint64_t far_position() const { return std::uint64_t{0x80000001} * channel.capacity; }
};

TEST_F(CorruptChannelTest, TakeWithAHeadLapsBehindTheSlotsReturnsCorrupted) {
  ASSERT_EQ(send("m"), SendStatus::ok);
  channel.head->head.store(far_position(), std::memory_order_relaxed);
  EXPECT_EQ(take().status, TakeOutcomeStatus::corrupted);
}

TEST_F(CorruptChannelTest, PublishWithATailLapsBehindTheSlotsReturnsCorrupted) {
  channel.tail->tail.store(far_position(), std::memory_order_relaxed);
  EXPECT_EQ(send("m"), SendStatus::corrupted);
  // The refused message's chunk went back to the pool.
  EXPECT_EQ(link.pool().audit().free, link.pool().audit().total);
}

TEST_F(CorruptChannelTest, TakeStillHelpsAHeadOneLapBehindPastConsumedSlots) {
  // The boundary of the check above: slots one lap ahead of the head are what consumers
  // that took a message and died before moving the head leave behind, so take must still
  // walk forward past them to the next message, not refuse.
  for (std::uint32_t i = 0; i < channel.capacity; ++i) {
    ASSERT_EQ(send("m"), SendStatus::ok);
    const TakeOutcome outcome = take();
    ASSERT_EQ(outcome.status, TakeOutcomeStatus::ok);
    receiver.ack(outcome.delivery.lease);
  }
  ASSERT_EQ(send("next"), SendStatus::ok);
  channel.head->head.store(0, std::memory_order_relaxed);
  const TakeOutcome outcome = take();
  ASSERT_EQ(outcome.status, TakeOutcomeStatus::ok);
  EXPECT_EQ(testing::text_of(outcome.delivery.payload), "next");
}

TEST_F(CorruptChannelTest, TakeRetryWithAHeadLapsBehindTheSlotsReturnsCorrupted) {
  // The same check in a type's retry ring (its own tenant memory).
  ASSERT_EQ(send("m"), SendStatus::ok);
  const TakeOutcome taken = take();
  ASSERT_EQ(taken.status, TakeOutcomeStatus::ok);
  ASSERT_EQ(receiver.release(taken.delivery.lease, take_lane), LeaseStatus::ok);
  const BusWords::RingWords retry = words.ring(kReceiverType, false);
  retry.header->head.store(std::uint64_t{0x80000001} * retry.capacity, std::memory_order_relaxed);
  const TakeOutcome outcome = watchdog.guard("take_retry", [&] { return receiver.take_retry(take_lane, 0); });
  EXPECT_EQ(outcome.status, TakeOutcomeStatus::corrupted);
}

}  // namespace
}  // namespace exobus::shm
