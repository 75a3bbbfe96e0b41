// Fuzz target: the checks of every word one side reads from memory the other side (or a
// broken instance of its own type) writes (data_plane.hpp, channel.hpp, chunk_pool.hpp,
// lease_table.hpp), on a small live bus of two types (tests/support/scratch_bus.hpp): link
// 0 carries the sender type's messages to the receiver type, link 1 the receiver's replies
// and messages back.
//
// The input is a program: each step is one opcode byte and one 64-bit word. Steps write
// the word into a channel's producer or consumer slot, its tail or head, a chunk's state or
// length, an ack word, a lease entry, a send record, or a slot, head or tail of a retry or
// dead-letter ring; or run take, ack, renew, release, reject, a send, a chunk read, or
// recovery, with the tokens and handles the word makes. No program may crash, read or
// write outside the mappings, or hang a call (libFuzzer's -timeout); a delivered payload
// lies inside its link's chunks. The bus is made once; each input starts from the same
// snapshot of its memory.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "exobus/shm/recovery.hpp"
#include "scratch_bus.hpp"

namespace exobus::shm {
namespace {

using testing::kCommandLink;
using testing::kReceiverType;
using testing::kReplyLink;
using testing::kSenderType;

constexpr std::uint32_t kInstances = 2;

testing::ScratchOptions fuzz_options() {
  testing::ScratchOptions options;
  options.channel_capacity = 8;
  options.reply_capacity = 4;
  options.instances = kInstances;
  options.lanes_per_instance = 3;
  options.leases_per_lane = 4;
  options.size_classes = {{256, 8}, {1024, 2}};
  options.delivery_limit = 2;
  return options;
}

// The link a type takes from, and the one it sends on.
std::uint32_t incoming_link(std::uint16_t type) { return type == kReceiverType ? kCommandLink : kReplyLink; }
std::uint32_t outgoing_link(std::uint16_t type) { return type == kSenderType ? kCommandLink : kReplyLink; }

// A bus with some traffic in it (messages queued both ways, one taken and held, one
// released to the retry ring, a reply waiting), and a copy of its memory to start every
// input from.
class LiveBus {
 public:
  LiveBus() : bus_(fuzz_options(), "fuzz-handles") {
    DataPlane sender = bus_.plane(kSenderType, 0);
    DataPlane receiver = bus_.plane(kReceiverType, 0);
    LaneCursor send_lane{sender.lane(kFirstSendLane)};
    for (std::uint32_t k = 0; k < 5; ++k) send(sender, send_lane, {&bus_.link(kCommandLink), kTypeChannel}, k);
    LaneCursor take_lane{receiver.lane(kCommandLane)};
    Link& commands = bus_.link(kCommandLink);
    const TakeOutcome held = receiver.take(take_lane, commands, commands.type_channel(), DataPlane::now_ms());
    const TakeOutcome released = receiver.take(take_lane, commands, commands.type_channel(), DataPlane::now_ms());
    if (held.status != TakeOutcomeStatus::ok || released.status != TakeOutcomeStatus::ok) std::abort();
    if (receiver.release(released.delivery.lease, take_lane) != LeaseStatus::ok) std::abort();
    LaneCursor reply_lane{receiver.lane(kFirstSendLane)};
    send(receiver, reply_lane, {&bus_.link(kReplyLink), 0 + 1}, 100);
    send(receiver, reply_lane, {&bus_.link(kReplyLink), kTypeChannel}, 101);
    for (const Region* region : bus_.memory().regions_in_order()) {
      snapshot_.push_back({region->base(), std::vector<std::byte>(region->base(), region->base() + region->size())});
    }
  }

  void reset() {
    for (const Saved& saved : snapshot_) std::memcpy(saved.base, saved.bytes.data(), saved.bytes.size());
  }
  testing::ScratchBus& bus() { return bus_; }

 private:
  static void send(DataPlane& plane, LaneCursor& cursor, const Destination& to, std::uint32_t id) {
    const Allocation allocation = plane.allocate(*to.link, sizeof id);
    if (allocation.status != PoolStatus::ok) std::abort();
    std::memcpy(allocation.buffer.data(), &id, sizeof id);
    const Part part{to, allocation.handle, sizeof id};
    if (plane.publish(cursor, std::span(&part, 1)).status != SendStatus::ok) std::abort();
  }
  struct Saved {
    std::byte* base;
    std::vector<std::byte> bytes;
  };
  testing::ScratchBus bus_;
  std::vector<Saved> snapshot_;
};

// Channel `select` of a link, counted over its type channel and its reply channels.
testing::BusWords::ChannelWords channel_words(const testing::BusWords& words, std::uint32_t link, std::uint32_t select) {
  return words.channel(link, select % (words.reply_channels(link) + 1));
}

LeaseToken token_of(std::uint64_t word) {
  return LeaseToken{static_cast<std::uint16_t>(word), static_cast<std::uint32_t>(word >> 16) & 0xff,
                    static_cast<std::uint32_t>(word >> 24)};
}

// What a take may deliver: a payload inside one chunk of the link it came by.
void check_delivery(const BusMemory& memory, const TakeOutcome& taken) {
  if (taken.status != TakeOutcomeStatus::ok) return;
  const Delivery& delivery = taken.delivery;
  const Region* half = memory.region(RegionKind::sender_half, delivery.link->index());
  if (delivery.handle.link() != delivery.link->index()) std::abort();
  if (delivery.payload.size() > delivery.link->pool().largest_chunk()) std::abort();
  if (!delivery.payload.empty() &&
      (delivery.payload.data() < half->base() || delivery.payload.data() + delivery.payload.size() > half->base() + half->size())) {
    std::abort();
  }
  unsigned sum = 0;
  for (const std::byte b : delivery.payload) sum += static_cast<unsigned>(b);  // ASan checks each read
  if (sum == 0xfffffff) std::abort();
}

}  // namespace
}  // namespace exobus::shm

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace exobus::shm;
  static LiveBus live;
  live.reset();
  testing::ScratchBus& bus = live.bus();
  const BusMemory& memory = bus.memory();
  const testing::BusWords words(memory);
  std::vector<LeaseToken> held[2];
  std::uint32_t now = DataPlane::now_ms();

  for (std::size_t at = 0; at + 9 <= size; at += 9) {
    const std::uint8_t op = data[at];
    std::uint64_t word = 0;
    std::memcpy(&word, data + at + 1, sizeof word);
    const std::uint32_t select = op >> 4;  // 0..15: which type, link, member, channel, field
    const auto type = static_cast<std::uint16_t>(select & 1);
    const std::uint32_t member = (select >> 1) % kInstances;
    const std::uint32_t link = select & 1;
    DataPlane plane = bus.plane(type, member);
    LaneCursor command_lane{plane.lane(kCommandLane)}, reply_lane{plane.lane(kReplyLane)},
        send_lane{plane.lane(kFirstSendLane)};
    switch (op & 0x0f) {
      case 0: {  // a producer slot, written by the link's sender type
        const testing::BusWords::ChannelWords channel = channel_words(words, link, select >> 1);
        ProducerSlot& slot = channel.producers[(word >> 60) % channel.capacity];
        (word & 1 ? slot.handle : slot.state).store(word >> 1);
        break;
      }
      case 1: {  // a consumer slot, written by the link's receiver type
        const testing::BusWords::ChannelWords channel = channel_words(words, link, select >> 1);
        channel.consumers[(word >> 60) % channel.capacity].state.store(word & ~(std::uint64_t{0xf} << 60));
        break;
      }
      case 2: {  // a tail or a head
        const testing::BusWords::ChannelWords channel = channel_words(words, link, select >> 2);
        (select & 2 ? channel.head->head : channel.tail->tail).store(word);
        break;
      }
      case 3: {  // a chunk's state or length
        ChunkHeader& chunk = words.chunk(link, static_cast<std::uint32_t>(word >> 56) % words.chunk_count(link));
        if (select & 2) {
          chunk.length.store(static_cast<std::uint32_t>(word));
        } else {
          chunk.state.store(word & ((std::uint64_t{1} << 56) - 1));
        }
        break;
      }
      case 4:
        words.ack(link, static_cast<std::uint32_t>(word >> 32) % words.chunk_count(link))
            .store(static_cast<std::uint32_t>(word));
        break;
      case 5: {  // a lease entry, in a type's own memory
        Tenant& tenant = bus.tenant(type);
        const LeaseTable leases = tenant.leases(static_cast<std::uint16_t>((word >> 56) % tenant.lane_count()));
        LeaseEntry& entry = leases.entry(static_cast<std::uint32_t>(word >> 54) % leases.size());
        (select & 2 ? entry.handle : entry.state).store(word & ((std::uint64_t{1} << 54) - 1));
        break;
      }
      case 6: {  // a send record
        Tenant& tenant = bus.tenant(type);
        SendRecord& record = tenant.send_record(static_cast<std::uint16_t>((word >> 56) % tenant.lane_count()));
        SendTarget& target = record.targets[(word >> 48) % 4];
        const std::uint64_t value = word & 0xffffffffffff;
        switch ((select >> 1) % 6) {
          case 0: record.phase.store(static_cast<std::uint32_t>(value % 4)); break;
          case 1: record.target_count.store(static_cast<std::uint32_t>(value)); break;
          case 2: target.handle.store(value); break;
          case 3: target.claimed.store(value); break;
          case 4: target.link.store(static_cast<std::uint32_t>(value)); break;
          default: target.channel.store(static_cast<std::uint32_t>(value)); break;
        }
        break;
      }
      case 7: {  // a retry or dead-letter ring's slot, head or tail
        const testing::BusWords::RingWords ring = words.ring(type, (select & 2) != 0);
        RingSlot& slot = ring.slots[(word >> 56) % ring.capacity];
        const std::uint64_t value = word & ((std::uint64_t{1} << 56) - 1);
        switch ((select >> 2) % 4) {
          case 0: slot.state.store(value); break;
          case 1: slot.handle.store(value); break;
          case 2: ring.header->head.store(value); break;
          default: ring.header->tail.store(value); break;
        }
        break;
      }
      case 8: {  // take, from the type channel, this instance's reply channel, or the retry ring
        Link& from = bus.link(incoming_link(type));
        TakeOutcome taken{};
        switch (word % 3) {
          case 0: taken = plane.take(command_lane, from, from.type_channel(), now); break;
          case 1: taken = plane.take(reply_lane, from, *from.reply_channel(member), now); break;
          default: taken = plane.take_retry(command_lane, now); break;
        }
        check_delivery(memory, taken);
        if (taken.status == TakeOutcomeStatus::ok) {
          (void)DataPlane::intact(taken.delivery);
          held[type].push_back(taken.delivery.lease);
        }
        break;
      }
      case 9: {  // settle a held lease, or a forged one
        const LeaseToken token =
            (!held[type].empty() && (word & 1)) ? held[type][(word >> 1) % held[type].size()] : token_of(word >> 1);
        switch ((select >> 1) % 4) {
          case 0: plane.ack(token); break;
          case 1: plane.renew(token, now); break;
          case 2: plane.release(token, command_lane); break;
          default: plane.reject(token, command_lane); break;
        }
        break;
      }
      case 10: {  // a send, to the type channel or any reply channel (in range or not)
        Link& to = bus.link(outgoing_link(type));
        const Allocation allocation = plane.allocate(to, (word >> 8) % 1100);
        if (allocation.status != PoolStatus::ok) break;
        const Part part{{&to, static_cast<std::uint32_t>(word % 4)}, allocation.handle,
                        static_cast<std::uint32_t>((word >> 8) % 1100)};
        if (plane.publish(send_lane, std::span(&part, 1)).status != SendStatus::ok) plane.abandon(to, allocation.handle);
        break;
      }
      case 11: {  // a handle read by the link's receiver
        const MessageHandle handle = MessageHandle::from_word(word);
        ChunkPool& pool = bus.link(link).pool();
        const ChunkView view = pool.read(handle);
        if (view.valid && view.payload.size() > pool.largest_chunk()) std::abort();
        (void)pool.intact(handle);
        (void)pool.still_pending(handle);
        break;
      }
      case 12: Recovery(memory).recover_instance(type, member); break;
      case 13: {
        now += static_cast<std::uint32_t>(word % 5000);
        Recovery(memory).reclaim_expired(now);
        break;
      }
      case 14: Recovery(memory).recover_daemon(); break;
      default: {
        std::uint64_t sink = 0;
        for (std::uint32_t l = 0; l < 2; ++l) {
          Link& each = bus.link(l);
          sink += each.type_channel().census().corrupt + each.type_channel().depth() + each.pool().audit().free;
          sink += each.type_channel().looks_empty() + each.type_channel().looks_full();
        }
        sink += bus.tenant(type).retry_ring().census().corrupt + bus.tenant(type).retry_ring().looks_empty();
        if (sink == 0x5eed5eed) std::abort();
        break;
      }
    }
  }
  return 0;
}
