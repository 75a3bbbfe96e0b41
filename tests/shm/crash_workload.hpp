#pragma once
// The workload crash tests kill at every fault point, and the checker that proves nothing
// was lost afterwards. The journal lives in memory shared with the test process, so what
// a killed child had done (a send that returned ok or was refused, an ack it made) survives
// it.
//
// The bus: three types (scratch_bus.hpp). The victim is an instance of `sender`: it fans
// every message out to `receiver` (link 0) and `observer` (link 2, whose short channel
// fills, so later fan-outs are refused), takes the commands `receiver` preloaded for its
// type (link 1's type channel) and the replies preloaded for it alone (link 1's reply
// channel of its slot), releases, holds and acknowledges what it took, and takes back
// what it released from its type's retry ring. Then it dies at a fault point, the daemon's
// Recovery runs, and survivors of every type drain the bus.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>
#include <map>
#include <set>
#include <stdexcept>

#include "exobus/shm/recovery.hpp"
#include "scratch_bus.hpp"

namespace exobus::shm::testing {

inline constexpr std::uint32_t kVictim = 1;    // sender's instance that dies
inline constexpr std::uint32_t kSurvivor = 2;  // sender's instance that drains after it
inline constexpr std::uint32_t kPreloadedCommands = 30;
inline constexpr std::uint32_t kPreloadedReplies = 10;
inline constexpr std::uint32_t kFirstReply = 1000;
inline constexpr std::uint32_t kFirstVictimSend = 100000;
inline constexpr std::uint32_t kObserverQueue = 16;

inline BusShape crash_shape() {
  ScratchOptions options;
  options.delivery_limit = 255;  // nothing may be dead-lettered: every message must come back
  BusShape shape = three_type_shape(options);
  shape.links[kObserverLink].shape.channel_capacity = kObserverQueue;
  return shape;
}

struct Journal {
  static constexpr std::uint32_t kCapacity = 4096;
  struct Entry {
    std::uint32_t id;
    std::uint8_t deliveries;
  };
  std::atomic<std::uint32_t> sending;     // the fan-out under way, 0 between them
  std::atomic<std::uint32_t> sent_count;  // fan-outs whose publish returned ok
  std::uint32_t sent[kCapacity];
  std::atomic<std::uint32_t> refused_count;  // fan-outs whose publish returned queue_full
  std::uint32_t refused[kCapacity];
  std::atomic<std::uint32_t> taken_count;  // commands the victim took (not replies)
  Entry taken[kCapacity];
  std::atomic<std::uint32_t> acked_count;  // commands whose ack the victim attempted
  Entry acked[kCapacity];

  static void append(std::atomic<std::uint32_t>& count, auto* entries, auto entry) {
    const std::uint32_t at = count.load(std::memory_order_relaxed);
    if (at == kCapacity) throw std::runtime_error("journal full");
    entries[at] = entry;
    count.store(at + 1, std::memory_order_release);  // one writer: the victim
  }
  void record_sent(std::uint32_t id) { append(sent_count, sent, id); }
  void record_refused(std::uint32_t id) { append(refused_count, refused, id); }
  void record_taken(const Entry& entry) { append(taken_count, taken, entry); }
  void record_acked(const Entry& entry) { append(acked_count, acked, entry); }
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
  SharedJournal(const SharedJournal&) = delete;
  SharedJournal& operator=(const SharedJournal&) = delete;
  Journal& operator*() const { return *journal_; }
  Journal* operator->() const { return journal_; }

 private:
  Journal* journal_;
};

inline std::span<const std::byte> bytes_of(const std::uint32_t& id) { return std::as_bytes(std::span(&id, 1)); }

inline std::uint32_t id_of(std::span<const std::byte> payload) {
  std::uint32_t id = 0;
  if (payload.size() == sizeof(id)) std::memcpy(&id, payload.data(), sizeof(id));
  return id;
}

// The victim's fan-out of one id to receiver and observer, all or nothing.
inline SendAttempt fan_out(DataPlane& plane, LaneCursor& cursor, std::uint32_t id) {
  const BusMemory& memory = plane.memory();
  const Destination to[] = {{memory.link(kCommandLink), kTypeChannel}, {memory.link(kObserverLink), kTypeChannel}};
  return send_to(plane, cursor, to, bytes_of(id));
}

// Before the victim starts: receiver sends commands to sender's type and replies to the
// victim's slot, all on link 1.
inline void preload(ScratchBus& bus) {
  DataPlane receiver = bus.plane(kReceiverType, 0);
  LaneCursor cursor{receiver.lane(kFirstSendLane)};
  Link& link = bus.link(kReplyLink);
  for (std::uint32_t id = 1; id <= kPreloadedCommands; ++id) {
    ASSERT_TRUE(send_one(receiver, cursor, link, bytes_of(id)).ok()) << "command " << id;
  }
  for (std::uint32_t id = kFirstReply; id < kFirstReply + kPreloadedReplies; ++id) {
    ASSERT_TRUE(send_one(receiver, cursor, link, bytes_of(id), kVictim + 1).ok()) << "reply " << id;
  }
}

// What the victim does until it dies (or finishes). `plane` is sender's instance kVictim,
// over the whole bus or over only what it was granted.
inline void victim_workload(DataPlane& plane, Journal& journal, std::uint32_t rounds) {
  LaneCursor sending{plane.lane(kFirstSendLane)};
  LaneCursor commands{plane.lane(kCommandLane)};
  LaneCursor replies{plane.lane(kReplyLane)};
  Link& incoming = *plane.memory().link(kReplyLink);
  std::uint32_t handled = 0;
  // Every 5th delivery is released, every 7th of the rest held (recovery must requeue it),
  // the others acknowledged.
  const auto handle = [&](const Delivery& delivery, LaneCursor& cursor, bool command) {
    const Journal::Entry entry{id_of(delivery.payload), delivery.deliveries};
    if (command) journal.record_taken(entry);
    ++handled;
    if (handled % 5 == 0) {
      plane.release(delivery.lease, cursor);
    } else if (handled % 7 != 0) {
      // Journaled before the call: a death inside ack may or may not have acknowledged it,
      // and both are correct (the message was delivered and processed).
      if (command) journal.record_acked(entry);
      plane.ack(delivery.lease);
    }
  };
  for (std::uint32_t round = 0; round < rounds; ++round) {
    const std::uint32_t id = kFirstVictimSend + round;
    journal.sending.store(id, std::memory_order_release);
    const SendAttempt sent = fan_out(plane, sending, id);
    journal.sending.store(0, std::memory_order_release);
    if (sent.ok()) {
      journal.record_sent(id);
    } else if (sent.result.status == SendStatus::queue_full) {
      journal.record_refused(id);
    }
    const std::uint32_t now = 0;
    TakeOutcome taken = plane.take(commands, incoming, incoming.type_channel(), now);
    if (taken.status == TakeOutcomeStatus::ok) handle(taken.delivery, commands, true);
    taken = plane.take_retry(commands, now);
    if (taken.status == TakeOutcomeStatus::ok) handle(taken.delivery, commands, true);
    taken = plane.take(replies, incoming, *incoming.reply_channel(kVictim), now);
    if (taken.status == TakeOutcomeStatus::ok) handle(taken.delivery, replies, false);
  }
}

inline RecoveryReport recover_victim(ScratchBus& bus) {
  const RecoveryReport report = Recovery(bus.memory()).recover_instance(kSenderType, kVictim);
  EXPECT_EQ(report.pending, 0u) << "a ring was full";
  return report;
}

// Takes and acknowledges everything `plane` can reach on `link`'s type channel and its
// type's retry ring; visit(id, delivery) for each.
template <class Visit>
void drain(DataPlane& plane, Link& link, Visit&& visit) {
  LaneCursor cursor{plane.lane(kCommandLane)};
  for (bool took = true; took;) {
    took = false;
    for (bool retry : {false, true}) {
      const TakeOutcome taken =
          retry ? plane.take_retry(cursor, 0) : plane.take(cursor, link, link.type_channel(), 0);
      if (taken.status == TakeOutcomeStatus::empty) continue;
      ASSERT_EQ(taken.status, TakeOutcomeStatus::ok);
      visit(id_of(taken.delivery.payload), taken.delivery);
      ASSERT_EQ(plane.ack(taken.delivery.lease), LeaseStatus::ok);
      took = true;
    }
  }
}

// Where a fan-out the victim died in must be, by the step it died at: a send that had
// committed reaches every target, one that had not reaches none.
enum class InDoubt : std::uint8_t { either, everywhere, nowhere };
inline InDoubt fate_of_a_send_cut_at(FaultPoint point) {
  switch (point) {
    case FaultPoint::send_committed: return InDoubt::everywhere;
    case FaultPoint::allocate_claimed:
    case FaultPoint::push_claimed:
    case FaultPoint::push_recorded:
    case FaultPoint::send_between_targets: return InDoubt::nowhere;
    default: return InDoubt::either;
  }
}

// After recovery: survivors drain every type. Then every command receiver preloaded was
// acknowledged by sender's type; every fan-out whose send returned ok reached receiver and
// observer exactly once; none that was refused reached either; every fan-out reached both
// or neither, and the one the victim died in (`died_at`) reached both if it had committed
// and neither if it had not; every repeated delivery was flagged; the bus is quiet; and
// new traffic flows.
inline void drain_and_check(ScratchBus& bus, Journal& journal, FaultPoint died_at = FaultPoint::none) {
  std::map<std::uint32_t, int> commands_seen;
  std::set<std::uint32_t> commands_acked;
  for (std::uint32_t i = 0; i < journal.taken_count.load(std::memory_order_acquire); ++i) {
    const Journal::Entry& taken = journal.taken[i];
    if (commands_seen[taken.id]++ > 0) {
      EXPECT_GT(taken.deliveries, 0) << "victim got command " << taken.id << " again unflagged";
    }
  }
  for (std::uint32_t i = 0; i < journal.acked_count.load(std::memory_order_acquire); ++i) {
    commands_acked.insert(journal.acked[i].id);
  }
  DataPlane survivor = bus.plane(kSenderType, kSurvivor);
  drain(survivor, bus.link(kReplyLink), [&](std::uint32_t id, const Delivery& delivery) {
    if (commands_seen[id]++ > 0) {
      EXPECT_TRUE(delivery.redelivered()) << "unflagged duplicate of command " << id;
    }
    commands_acked.insert(id);
  });
  for (std::uint32_t id = 1; id <= kPreloadedCommands; ++id) {
    EXPECT_TRUE(commands_acked.contains(id)) << "command " << id << " lost";
  }

  std::map<std::uint32_t, int> at_receiver, at_observer;
  DataPlane receiver = bus.plane(kReceiverType, 0);
  DataPlane observer = bus.plane(kObserverType, 0);
  drain(receiver, bus.link(kCommandLink), [&](std::uint32_t id, const Delivery&) { ++at_receiver[id]; });
  drain(observer, bus.link(kObserverLink), [&](std::uint32_t id, const Delivery&) { ++at_observer[id]; });
  for (const auto& [id, count] : at_receiver) EXPECT_EQ(count, 1) << "receiver got " << id << " " << count << " times";
  for (const auto& [id, count] : at_observer) EXPECT_EQ(count, 1) << "observer got " << id << " " << count << " times";
  EXPECT_EQ(at_receiver.size(), at_observer.size()) << "a fan-out reached one type and not the other";
  for (const auto& [id, count] : at_receiver) EXPECT_TRUE(at_observer.contains(id)) << id << " reached receiver only";
  for (std::uint32_t i = 0; i < journal.sent_count.load(std::memory_order_acquire); ++i) {
    const std::uint32_t id = journal.sent[i];
    EXPECT_TRUE(at_receiver.contains(id)) << "fan-out " << id << " lost at receiver";
    EXPECT_TRUE(at_observer.contains(id)) << "fan-out " << id << " lost at observer";
  }
  for (std::uint32_t i = 0; i < journal.refused_count.load(std::memory_order_acquire); ++i) {
    const std::uint32_t id = journal.refused[i];
    EXPECT_FALSE(at_receiver.contains(id) || at_observer.contains(id)) << "refused fan-out " << id << " delivered";
  }
  if (const std::uint32_t cut = journal.sending.load(std::memory_order_acquire); cut != 0) {
    switch (fate_of_a_send_cut_at(died_at)) {
      case InDoubt::everywhere:
        EXPECT_TRUE(at_receiver.contains(cut) && at_observer.contains(cut))
            << "fan-out " << cut << " had committed when its sender died, and was lost";
        break;
      case InDoubt::nowhere:
        EXPECT_FALSE(at_receiver.contains(cut) || at_observer.contains(cut))
            << "fan-out " << cut << " had not committed when its sender died, and was delivered";
        break;
      case InDoubt::either: break;
    }
  }

  const BusCensus census = census_of(bus.memory());
  EXPECT_TRUE(census.quiet()) << census.describe();

  // Later traffic flows, both ways.
  LaneCursor sending{survivor.lane(kFirstSendLane)};
  ASSERT_TRUE(fan_out(survivor, sending, 7).ok());
  std::uint32_t arrived = 0;
  drain(receiver, bus.link(kCommandLink), [&](std::uint32_t id, const Delivery&) { arrived += id == 7; });
  drain(observer, bus.link(kObserverLink), [&](std::uint32_t id, const Delivery&) { arrived += id == 7; });
  EXPECT_EQ(arrived, 2u);
  LaneCursor answering{receiver.lane(kFirstSendLane)};
  ASSERT_TRUE(send_one(receiver, answering, bus.link(kReplyLink), bytes_of(std::uint32_t{8})).ok());
  arrived = 0;
  drain(survivor, bus.link(kReplyLink), [&](std::uint32_t id, const Delivery&) { arrived += id == 8; });
  EXPECT_EQ(arrived, 1u);
}

inline const FaultPoint kVictimFaultPoints[] = {
    FaultPoint::allocate_claimed,     FaultPoint::send_committed, FaultPoint::push_claimed, FaultPoint::push_recorded,
    FaultPoint::send_between_targets, FaultPoint::take_claimed,   FaultPoint::take_leased,  FaultPoint::ack_cleared,
    FaultPoint::reclaim_marked,       FaultPoint::reclaim_pushed,
};

}  // namespace exobus::shm::testing
