#pragma once
// A link carries the messages of one service type (the sender) to another (the receiver):
// commands and events through the type channel, replies through one reply channel per
// instance slot of the receiver. It is two memory objects, each written by one side only:
//
//   sender half (the sender type writes; the receiver maps it read-only)
//   +-------------------------------+  0
//   | type channel, producer half   |  ChannelTail + ProducerSlot[channel capacity]
//   +-------------------------------+
//   | reply channels, producer half |  reply channels x (ChannelTail + ProducerSlot[reply capacity])
//   +-------------------------------+
//   | chunks                        |  ChunkPool (chunk_pool.hpp), the size classes in order
//   +-------------------------------+  sender_bytes
//
//   receiver half (the receiver type writes; the sender maps it read-only)
//   +-------------------------------+  0
//   | LinkCounters                  |  what the receiver refused of this sender
//   +-------------------------------+
//   | type channel, consumer half   |  ChannelHead + ConsumerSlot[channel capacity]
//   +-------------------------------+
//   | reply channels, consumer half |  reply channels x (ChannelHead + ConsumerSlot[reply capacity])
//   +-------------------------------+
//   | ack words                     |  one per chunk
//   +-------------------------------+  receiver_bytes
//
// The sender of a message is the link it came by: nothing in either half can make it
// another type. Only the sender's messages to the receiver ever lie in the sender half, so
// mapping it shows the receiver nothing meant for anyone else, not even in freed chunks.
// Neither half has a header a tenant could scribble on: where everything lies is computed
// from the link's shape, which the daemon keeps in the directory (directory.hpp).
#include <atomic>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "exobus/error.hpp"
#include "exobus/shm/channel.hpp"
#include "exobus/shm/chunk_pool.hpp"

namespace exobus::shm {

// What a link is, as the daemon decided it from the configuration.
struct LinkShape {
  std::uint16_t sender = 0;             // type index
  std::uint16_t receiver = 0;           // type index
  std::uint32_t channel_capacity = 0;   // 0: the sender sends the receiver nothing but replies
  std::uint32_t reply_channels = 0;     // 0: the receiver sends the sender nothing to reply to
  std::uint32_t reply_capacity = 0;     // power of two when reply_channels > 0
  std::vector<SizeClass> size_classes;  // ascending sizes
};

// Why a receiver refused a message of this link's sender.
enum class RefusalReason : std::uint8_t {
  unreadable,  // its handle points at no message of the link's pool (or at one reused meanwhile)
  malformed,   // its bytes do not decode as an enveloped message
  forged,      // it names a sender other than its link's, or answers a request never sent there
  not_routed,  // a name its sender may not send to this type, or that this type does not receive
  payload,     // a payload its schema or the JSON check refuses
};
inline constexpr std::size_t kRefusalReasons = 5;
// The reason's name in exobus status and the metrics' reason label.
std::string_view refusal_reason_name(RefusalReason reason);

// What the receiver refused of this sender, by reason: written by the receiver's instances
// (relaxed adds; refusals are rare) and read by the daemon (exobus status, metrics). The
// counters only go up while the link lives. A hostile receiver can only misreport its own
// refusals.
struct alignas(64) LinkCounters {
  std::atomic<std::uint64_t> refused[kRefusalReasons];

  std::uint64_t refused_in_all() const {
    std::uint64_t total = 0;
    for (const std::atomic<std::uint64_t>& count : refused) total += count.load(std::memory_order_relaxed);
    return total;
  }
  void count(RefusalReason reason) {
    refused[static_cast<std::size_t>(reason)].fetch_add(1, std::memory_order_relaxed);
  }
};
static_assert(sizeof(LinkCounters) == 64 && offsetof(LinkCounters, refused) == 0);

struct LinkLayout {
  // sender half
  std::uint64_t channel_producer = 0, replies_producer = 0, reply_producer_stride = 0, chunks = 0;
  std::uint64_t sender_bytes = 0;
  // receiver half
  std::uint64_t channel_consumer = 0, replies_consumer = 0, reply_consumer_stride = 0, acks = 0;
  std::uint64_t receiver_bytes = 0;
};

// Validates the shape (powers of two, bounds) and lays it out; config_error otherwise.
Result<LinkLayout> compute_link_layout(const LinkShape& shape);

// A mapped link: pointers into both halves. Either base may be read-only in this process;
// which operations may be used then is the caller's rule (data_plane.hpp).
class Link {
 public:
  Link() = default;
  Link(std::uint32_t index, const LinkShape& shape, const LinkLayout& layout, std::byte* sender_half,
       std::byte* receiver_half);

  std::uint32_t index() const { return index_; }
  std::uint16_t sender() const { return sender_; }
  std::uint16_t receiver() const { return receiver_; }
  bool has_type_channel() const { return type_channel_.valid(); }
  Channel& type_channel() { return type_channel_; }
  std::uint32_t reply_channel_count() const { return static_cast<std::uint32_t>(reply_channels_.size()); }
  // The reply channel of the receiver's instance slot `instance`; null when out of range.
  Channel* reply_channel(std::uint32_t instance) {
    return instance < reply_channels_.size() ? &reply_channels_[instance] : nullptr;
  }
  ChunkPool& pool() { return pool_; }
  LinkCounters& counters() const { return *counters_; }

 private:
  std::uint32_t index_ = 0;
  std::uint16_t sender_ = 0, receiver_ = 0;
  Channel type_channel_;
  std::vector<Channel> reply_channels_;
  ChunkPool pool_;
  LinkCounters* counters_ = nullptr;
};

}  // namespace exobus::shm
