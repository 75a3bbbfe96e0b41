#include "delivery_trace.hpp"

namespace exobus::client {

void DeliveryTrace::record(const shm::Tenant& tenant, std::uint32_t member, shm::TraceLoop loop,
                           const TracedDelivery& delivery) {
  const auto index = static_cast<std::uint32_t>(loop);
  shm::TraceRingHeader* ring = tenant.trace_ring(member, loop);
  if (rings_[index] != ring) {
    rings_[index] = ring;
    writers_[index] = shm::TraceWriter(ring);
  }
  const MessageView& view = delivery.message.message;
  const std::uint64_t sent_at = delivery.message.envelope.sent_at_ns;
  shm::TraceEntry entry;
  entry.taken_at_ns = delivery.taken_at_ns != 0 ? delivery.taken_at_ns : envelope_clock_ns();
  if (sent_at != 0) {
    entry.flags |= shm::kTraceStamped;
    entry.delay_ns = clock_ns_between(sent_at, entry.taken_at_ns);
  }
  entry.id = view.id.bytes();
  entry.request_id = view.request_id.bytes();
  entry.sender_type = delivery.sender_type;
  entry.sender_member = delivery.message.envelope.reply_member;
  entry.deliveries = static_cast<std::uint16_t>(delivery.deliveries);
  if (delivery.redelivered) entry.flags |= shm::kTraceRedelivered;
  if (view.is_reply()) entry.flags |= shm::kTraceReply;
  entry.set_text(view.name, delivery.internal_name != view.name ? delivery.internal_name : std::string_view(),
                 view.payload);
  writers_[index].write(entry);
}

}  // namespace exobus::client
