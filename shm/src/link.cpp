#include "exobus/shm/link.hpp"

#include <bit>

namespace exobus::shm {

namespace {

constexpr std::uint32_t kMaxCapacity = 1u << 24;
constexpr std::uint32_t kMaxReplyChannels = 1u << 16;

bool valid_capacity(std::uint32_t capacity) {
  return std::has_single_bit(capacity) && capacity >= 2 && capacity <= kMaxCapacity;
}

Error invalid(std::string message) { return Error{ErrorCode::config_error, std::move(message)}; }

}  // namespace

Result<LinkLayout> compute_link_layout(const LinkShape& shape) {
  if (shape.channel_capacity != 0 && !valid_capacity(shape.channel_capacity)) {
    return invalid("a queue's capacity must be a power of two from 2 to 16777216");
  }
  if (shape.reply_channels > kMaxReplyChannels || (shape.reply_channels != 0 && !valid_capacity(shape.reply_capacity))) {
    return invalid("reply inboxes need a capacity that is a power of two from 2 to 16777216");
  }
  if (shape.channel_capacity == 0 && shape.reply_channels == 0) return invalid("a link carries nothing");
  if (shape.size_classes.empty() || shape.size_classes.size() > kMaxSizeClasses) {
    return invalid("a bus needs 1 to 8 chunk size classes");
  }
  std::uint64_t chunks = 0;
  std::uint32_t previous_size = 0;
  for (const SizeClass& size_class : shape.size_classes) {
    if (!std::has_single_bit(size_class.chunk_size) || size_class.chunk_size < kMinChunkSize ||
        size_class.chunk_size > kMaxChunkSize || size_class.chunk_size <= previous_size) {
      return invalid("chunk sizes must be powers of two from 256 B to 1 MiB, ascending");
    }
    if (size_class.chunk_count == 0) return invalid("a size class needs at least one chunk");
    previous_size = size_class.chunk_size;
    chunks += size_class.chunk_count;
  }
  if (chunks > kMaxChunksPerPool) return invalid("a link's pool holds at most 16777215 chunks");

  LinkLayout layout;
  std::uint64_t offset = 0;
  layout.channel_producer = offset;
  if (shape.channel_capacity != 0) offset += Channel::producer_bytes(shape.channel_capacity);
  layout.replies_producer = offset;
  if (shape.reply_channels != 0) layout.reply_producer_stride = Channel::producer_bytes(shape.reply_capacity);
  offset += layout.reply_producer_stride * shape.reply_channels;
  layout.chunks = offset;
  offset += ChunkPool::chunk_bytes(shape.size_classes);
  layout.sender_bytes = offset;

  offset = sizeof(LinkCounters);
  layout.channel_consumer = offset;
  if (shape.channel_capacity != 0) offset += Channel::consumer_bytes(shape.channel_capacity);
  layout.replies_consumer = offset;
  if (shape.reply_channels != 0) layout.reply_consumer_stride = Channel::consumer_bytes(shape.reply_capacity);
  offset += layout.reply_consumer_stride * shape.reply_channels;
  layout.acks = offset;
  offset += (ChunkPool::ack_bytes(shape.size_classes) + 63) / 64 * 64;
  layout.receiver_bytes = offset;
  return layout;
}

namespace {

Channel channel_at(std::byte* sender_half, std::uint64_t producer, std::byte* receiver_half, std::uint64_t consumer,
                   std::uint32_t capacity) {
  auto* tail = reinterpret_cast<ChannelTail*>(sender_half + producer);
  auto* head = reinterpret_cast<ChannelHead*>(receiver_half + consumer);
  return Channel(tail, reinterpret_cast<ProducerSlot*>(tail + 1), head, reinterpret_cast<ConsumerSlot*>(head + 1),
                 capacity);
}

}  // namespace

Link::Link(std::uint32_t index, const LinkShape& shape, const LinkLayout& layout, std::byte* sender_half,
           std::byte* receiver_half)
    : index_(index),
      sender_(shape.sender),
      receiver_(shape.receiver),
      pool_(sender_half + layout.chunks, reinterpret_cast<std::atomic<std::uint32_t>*>(receiver_half + layout.acks),
            shape.size_classes, index),
      counters_(reinterpret_cast<LinkCounters*>(receiver_half)) {
  if (shape.channel_capacity != 0) {
    type_channel_ = channel_at(sender_half, layout.channel_producer, receiver_half, layout.channel_consumer,
                               shape.channel_capacity);
  }
  reply_channels_.reserve(shape.reply_channels);
  for (std::uint32_t r = 0; r < shape.reply_channels; ++r) {
    reply_channels_.push_back(channel_at(sender_half, layout.replies_producer + r * layout.reply_producer_stride,
                                         receiver_half, layout.replies_consumer + r * layout.reply_consumer_stride,
                                         shape.reply_capacity));
  }
}

std::string_view refusal_reason_name(RefusalReason reason) {
  switch (reason) {
    case RefusalReason::unreadable: return "unreadable";
    case RefusalReason::malformed: return "malformed";
    case RefusalReason::forged: return "forged";
    case RefusalReason::not_routed: return "not_routed";
    case RefusalReason::payload: return "payload";
  }
  return "unknown";
}

}  // namespace exobus::shm
