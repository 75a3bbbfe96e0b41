#pragma once
// A bus's memory of its own for each test or benchmark, laid out as the daemon lays one out
// (BusMemory::create), without a daemon. Its memory goes with the last process that maps
// it; a child forked after it is made maps it too (a fork keeps shared mappings).
//
// The usual shape: two types, `sender` (index 0) and `receiver` (index 1), and the two
// links between them: link 0 carries sender's commands to receiver (and replies to
// receiver's instances), link 1 carries receiver's replies to sender's instances (and
// receiver's commands to sender, though the usual tests send none).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "exobus/shm/data_plane.hpp"
#include "exobus/shm/recovery.hpp"

namespace exobus::shm::testing {

inline constexpr std::uint16_t kSenderType = 0;
inline constexpr std::uint16_t kReceiverType = 1;
inline constexpr std::uint32_t kCommandLink = 0;  // sender -> receiver
inline constexpr std::uint32_t kReplyLink = 1;    // receiver -> sender

struct ScratchOptions {
  std::uint32_t channel_capacity = 64;  // of each link's type channel
  std::uint32_t reply_capacity = 64;    // of each reply channel
  std::uint32_t instances = 8;          // instance slots of each type
  std::uint32_t lanes_per_instance = 4;
  std::uint32_t leases_per_lane = 32;
  std::uint32_t lease_ms = 1000;
  std::uint32_t delivery_limit = 3;
  std::vector<SizeClass> size_classes{{256, 512}, {4096, 16}};
};

inline BusShape two_type_shape(const ScratchOptions& options = {}) {
  BusShape shape;
  shape.directory.type_slots = 2;
  shape.directory.link_slots = 4;
  shape.directory.lanes_per_instance = options.lanes_per_instance;
  shape.directory.size_classes = options.size_classes;
  shape.instance_slots = 2 * options.instances;
  shape.region_slots = 2 + 2 + 2 * 4;
  TenantShape tenant;
  tenant.instances = options.instances;
  tenant.lanes_per_instance = options.lanes_per_instance;
  tenant.leases_per_lane = options.leases_per_lane;
  tenant.retry_capacity = std::bit_ceil(std::max(options.channel_capacity, 2 * options.instances * options.leases_per_lane));
  tenant.dead_letter_capacity = 64;
  tenant.lease_ms = options.lease_ms;
  tenant.delivery_limit = options.delivery_limit;
  shape.types = {{kSenderType, "sender", tenant}, {kReceiverType, "receiver", tenant}};
  const auto link = [&](std::uint16_t from, std::uint16_t to) {
    return LinkShape{from, to, options.channel_capacity, options.instances, options.reply_capacity, options.size_classes};
  };
  shape.links = {{kCommandLink, link(kSenderType, kReceiverType)}, {kReplyLink, link(kReceiverType, kSenderType)}};
  return shape;
}

// Owns a freshly created bus memory: everything mapped writable, as the daemon maps it.
class ScratchBus {
 public:
  explicit ScratchBus(const BusShape& shape = two_type_shape(), const std::string& purpose = "bus") {
    Result<std::unique_ptr<BusMemory>> created = BusMemory::create("exobus-test." + purpose, shape);
    if (!created) throw std::runtime_error(created.error().message);
    memory_ = std::move(created).value();
  }
  explicit ScratchBus(const ScratchOptions& options, const std::string& purpose = "bus")
      : ScratchBus(two_type_shape(options), purpose) {}
  ScratchBus(const ScratchBus&) = delete;
  ScratchBus& operator=(const ScratchBus&) = delete;

  BusMemory& memory() { return *memory_; }
  Link& link(std::uint32_t index) { return *memory_->link(index); }
  Tenant& tenant(std::uint16_t type) { return *memory_->tenant(type); }
  // The plane of instance `member` of `type`; tenant(type).daemon_instance() is the daemon's.
  DataPlane plane(std::uint16_t type, std::uint32_t member) { return DataPlane(*memory_, type, member); }

 private:
  std::unique_ptr<BusMemory> memory_;
};

// Maps `memory` again as an instance of `type` maps it from its registration: only its
// grants (the directory read-only, its tenant memory, and both halves of its links, the
// other side's read-only), through descriptors of their own. For a forked peer that should
// see exactly what a separate service would. Errors: as BusMemory::attach, or io.
inline Result<std::unique_ptr<BusMemory>> attach_as(const BusMemory& memory, std::uint16_t type) {
  std::vector<Grant> grants = memory.grants_for(type);
  for (std::size_t k = 0; k < grants.size(); ++k) {
    grants[k].fd = ::fcntl(grants[k].fd, F_DUPFD_CLOEXEC, 0);
    if (grants[k].fd == -1) {
      for (std::size_t opened = 0; opened < k; ++opened) ::close(grants[opened].fd);
      return Error{ErrorCode::io, "cannot duplicate a descriptor of the bus's memory"};
    }
  }
  return BusMemory::attach(grants);
}

// The shared words of a mapped bus, found as any process that maps them finds them: from
// the shapes in the directory and the layouts they give, never from the views' internals.
// For tests that play a hostile or broken instance scribbling on memory its type writes.
class BusWords {
 public:
  explicit BusWords(const BusMemory& memory) : memory_(memory) {}

  // The words of one channel of a link: channel 0 is its type channel, r + 1 the reply
  // channel of the receiver's instance r.
  struct ChannelWords {
    ChannelTail* tail;           // in the sender half
    ProducerSlot* producers;     // in the sender half
    ChannelHead* head;           // in the receiver half
    ConsumerSlot* consumers;     // in the receiver half
    std::uint32_t capacity = 0;  // 0: the link has no such channel
  };
  ChannelWords channel(std::uint32_t link, std::uint32_t channel) const {
    const LinkShape shape = *memory_.directory().link_shape(link);
    const LinkLayout layout = compute_link_layout(shape).value();
    if (channel == kTypeChannel ? shape.channel_capacity == 0 : channel > shape.reply_channels) return {};
    const std::uint64_t producer =
        channel == 0 ? layout.channel_producer : layout.replies_producer + (channel - 1) * layout.reply_producer_stride;
    const std::uint64_t consumer =
        channel == 0 ? layout.channel_consumer : layout.replies_consumer + (channel - 1) * layout.reply_consumer_stride;
    auto* tail = reinterpret_cast<ChannelTail*>(sender_half(link) + producer);
    auto* head = reinterpret_cast<ChannelHead*>(receiver_half(link) + consumer);
    return {tail, reinterpret_cast<ProducerSlot*>(tail + 1), head, reinterpret_cast<ConsumerSlot*>(head + 1),
            channel == 0 ? shape.channel_capacity : shape.reply_capacity};
  }
  std::uint32_t reply_channels(std::uint32_t link) const { return memory_.directory().link_shape(link)->reply_channels; }

  // A chunk of a link's pool (sender half) and its ack word (receiver half), by pool index.
  std::uint32_t chunk_count(std::uint32_t link) const {
    std::uint32_t total = 0;
    for (const SizeClass& size_class : memory_.directory().size_classes()) total += size_class.chunk_count;
    (void)link;  // every link has the directory's size classes
    return total;
  }
  ChunkHeader& chunk(std::uint32_t link, std::uint32_t index) const {
    const LinkLayout layout = compute_link_layout(*memory_.directory().link_shape(link)).value();
    std::byte* at = sender_half(link) + layout.chunks;
    for (const SizeClass& size_class : memory_.directory().size_classes()) {
      const std::uint64_t stride = kChunkHeaderBytes + size_class.chunk_size;
      if (index < size_class.chunk_count) return *reinterpret_cast<ChunkHeader*>(at + index * stride);
      index -= size_class.chunk_count;
      at += size_class.chunk_count * stride;
    }
    throw std::out_of_range("no such chunk");
  }
  std::atomic<std::uint32_t>& ack(std::uint32_t link, std::uint32_t index) const {
    const LinkLayout layout = compute_link_layout(*memory_.directory().link_shape(link)).value();
    return reinterpret_cast<std::atomic<std::uint32_t>*>(receiver_half(link) + layout.acks)[index];
  }

  // A type's retry ring or dead letters (its tenant memory).
  struct RingWords {
    RingHeader* header;
    RingSlot* slots;
    std::uint32_t capacity;
  };
  RingWords ring(std::uint16_t type, bool dead_letters) const {
    const TenantShape shape = *memory_.directory().type_shape(type);
    const TenantLayout layout = compute_tenant_layout(shape).value();
    auto* header = reinterpret_cast<RingHeader*>(memory_.region(RegionKind::tenant, type)->base() +
                                                 (dead_letters ? layout.dead_letters : layout.retry_ring));
    return {header, reinterpret_cast<RingSlot*>(header + 1),
            dead_letters ? shape.dead_letter_capacity : shape.retry_capacity};
  }

  std::byte* sender_half(std::uint32_t link) const { return memory_.region(RegionKind::sender_half, link)->base(); }
  std::byte* receiver_half(std::uint32_t link) const { return memory_.region(RegionKind::receiver_half, link)->base(); }

 private:
  const BusMemory& memory_;
};

inline std::span<const std::byte> bytes_of(const std::string& text) {
  return std::as_bytes(std::span(text.data(), text.size()));
}
inline std::string text_of(std::span<const std::byte> bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// --- Added for the whole-data-plane tests (tests/shm/) ---

// A third type, `observer` (index 2), for fan-outs over several links: link 2 carries
// sender's messages to observer, link 3 observer's replies to sender. Room is left in the
// directory and the registry for one more type and two more links (a reload).
inline constexpr std::uint16_t kObserverType = 2;
inline constexpr std::uint32_t kObserverLink = 2;       // sender -> observer
inline constexpr std::uint32_t kObserverReplyLink = 3;  // observer -> sender

inline BusShape three_type_shape(const ScratchOptions& options = {}) {
  BusShape shape = two_type_shape(options);
  shape.directory.type_slots = 4;
  shape.directory.link_slots = 6;
  shape.region_slots = 2 + 4 + 2 * 6;
  BusShape::Type observer = shape.types[1];
  observer.index = kObserverType;
  observer.name = "observer";
  shape.types.push_back(observer);
  const auto link = [&](std::uint16_t from, std::uint16_t to) {
    return LinkShape{from, to, options.channel_capacity, options.instances, options.reply_capacity, options.size_classes};
  };
  shape.links.push_back({kObserverLink, link(kSenderType, kObserverType)});
  shape.links.push_back({kObserverReplyLink, link(kObserverType, kSenderType)});
  return shape;
}

// Where every message of a bus is, summed over its links and types: what a quiet bus
// (every message acknowledged, nothing half done) has none of.
struct BusCensus {
  std::uint64_t chunks_allocated = 0, chunks_published = 0;  // published: not yet acknowledged
  std::uint64_t queued = 0, writing = 0, reading = 0;        // channel slots
  std::uint64_t tombstones = 0;                              // not yet skipped by a consumer
  std::uint64_t retry_queued = 0, dead_letters = 0, ring_half_done = 0;
  std::uint64_t leases = 0;
  std::uint64_t sends_in_progress = 0;  // send records not idle

  bool quiet() const {
    return chunks_allocated + chunks_published + queued + writing + reading + retry_queued + dead_letters +
               ring_half_done + leases + sends_in_progress ==
           0;
  }
  std::string describe() const {
    return "chunks allocated " + std::to_string(chunks_allocated) + ", published " + std::to_string(chunks_published) +
           "; channel slots queued " + std::to_string(queued) + ", writing " + std::to_string(writing) +
           ", reading " + std::to_string(reading) + ", tombstones " + std::to_string(tombstones) + "; retry " +
           std::to_string(retry_queued) + ", dead letters " + std::to_string(dead_letters) +
           ", half-done ring slots " + std::to_string(ring_half_done) + "; leases " + std::to_string(leases) +
           "; sends in progress " + std::to_string(sends_in_progress);
  }
};

// Counts over memory this process maps whole (the daemon's view: a ScratchBus).
inline BusCensus census_of(const BusMemory& memory) {
  BusCensus census;
  for (std::uint32_t index = 0; index < memory.link_slots(); ++index) {
    Link* link = memory.link(index);
    if (link == nullptr) continue;
    const PoolAudit pool = link->pool().audit();
    census.chunks_allocated += pool.allocated;
    census.chunks_published += pool.published;
    const auto count = [&](const Channel& channel) {
      const Channel::Census slots = channel.census();
      census.queued += slots.full;
      census.writing += slots.writing;
      census.reading += slots.reading;
      census.tombstones += slots.tombstone;
    };
    if (link->has_type_channel()) count(link->type_channel());
    for (std::uint32_t r = 0; r < link->reply_channel_count(); ++r) count(*link->reply_channel(r));
  }
  for (std::uint16_t type = 0; type < memory.type_slots(); ++type) {
    Tenant* tenant = memory.tenant(type);
    if (tenant == nullptr) continue;
    const ReadyRing::Census retry = tenant->retry_ring().census();
    const ReadyRing::Census dead = tenant->dead_letters().census();
    census.retry_queued += retry.full;
    census.dead_letters += dead.full;
    census.ring_half_done += retry.writing + retry.reading + dead.writing + dead.reading;
    for (std::uint16_t lane = 0; lane < tenant->lane_count(); ++lane) {
      tenant->leases(lane).for_each_held([&](LeaseEntry&, std::uint64_t) { ++census.leases; });
      if (tenant->send_record(lane).phase.load(std::memory_order_acquire) !=
          static_cast<std::uint32_t>(SendPhase::idle)) {
        ++census.sends_in_progress;
      }
    }
  }
  return census;
}

// One send as the client library makes it: a chunk allocated in each destination's link,
// `payload` written into each, all published at once. Whatever fails, nothing is left
// behind: the chunks of a refused send are abandoned.
struct SendAttempt {
  PoolStatus allocation = PoolStatus::ok;  // not ok: a chunk could not be had; nothing was published
  SendResult result{SendStatus::ok};
  bool ok() const { return allocation == PoolStatus::ok && result.status == SendStatus::ok; }
};

inline SendAttempt send_to(DataPlane& plane, LaneCursor& cursor, std::span<const Destination> to,
                           std::span<const std::byte> payload) {
  std::vector<Part> parts;
  const auto abandon_all = [&] {
    for (const Part& part : parts) plane.abandon(*part.to.link, part.handle);
  };
  for (const Destination& destination : to) {
    const Allocation allocation = plane.allocate(*destination.link, payload.size());
    if (allocation.status != PoolStatus::ok) {
      abandon_all();
      return {allocation.status, {SendStatus::ok}};
    }
    std::copy(payload.begin(), payload.end(), allocation.buffer.begin());
    parts.push_back({destination, allocation.handle, static_cast<std::uint32_t>(payload.size())});
  }
  const SendResult result = plane.publish(cursor, parts);
  if (result.status != SendStatus::ok) abandon_all();
  return {PoolStatus::ok, result};
}

// To one channel of one link: its type channel, or reply channel r as r + 1.
inline SendAttempt send_one(DataPlane& plane, LaneCursor& cursor, Link& link, std::span<const std::byte> payload,
                            std::uint32_t channel = kTypeChannel) {
  const Destination to{&link, channel};
  return send_to(plane, cursor, std::span(&to, 1), payload);
}

}  // namespace exobus::shm::testing
