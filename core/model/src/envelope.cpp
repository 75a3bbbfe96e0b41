#include "exobus/envelope.hpp"

#include <cstring>

namespace exobus {

namespace {

// Field offsets, as drawn in envelope.hpp.
constexpr std::size_t kReplyMemberAt = 0;
constexpr std::size_t kSentAtAt = 8;
static_assert(kSentAtAt + sizeof(std::uint64_t) == kEnvelopeBytes);

template <class EncodeMessage>
Result<std::size_t> encode_with_envelope(const Envelope& envelope, std::span<std::byte> out,
                                         EncodeMessage encode_message) {
  if (out.size() < kEnvelopeBytes) {
    return Error{ErrorCode::payload_too_large, "buffer too small for the message envelope"};
  }
  std::memset(out.data(), 0, kSentAtAt);
  std::memcpy(out.data() + kReplyMemberAt, &envelope.reply_member, sizeof envelope.reply_member);
  std::memcpy(out.data() + kSentAtAt, &envelope.sent_at_ns, sizeof envelope.sent_at_ns);
  Result<std::size_t> written = encode_message(out.subspan(kEnvelopeBytes));
  if (!written) return written.error();
  return kEnvelopeBytes + written.value();
}

}  // namespace

Result<std::size_t> encode_enveloped(const Envelope& envelope, const MessageView& message, std::span<std::byte> out) {
  return encode_with_envelope(envelope, out,
                              [&](std::span<std::byte> rest) { return encode_with_valid_names(message, rest); });
}

Result<std::size_t> encode_enveloped_around_payload(const Envelope& envelope, const MessageView& message,
                                                    std::size_t payload_size, std::span<std::byte> out) {
  return encode_with_envelope(
      envelope, out, [&](std::span<std::byte> rest) { return encode_around_payload(message, payload_size, rest); });
}

void restamp_sent_at(std::span<std::byte> enveloped, std::uint64_t sent_at_ns) {
  if (enveloped.size() >= kEnvelopeBytes) std::memcpy(enveloped.data() + kSentAtAt, &sent_at_ns, sizeof sent_at_ns);
}

Result<EnvelopedMessage> decode_enveloped(std::span<const std::byte> bytes, NameCheck names) {
  if (bytes.size() < kEnvelopeBytes) {
    return Error{ErrorCode::corrupted, "chunk shorter than a message envelope"};
  }
  Envelope envelope;
  std::memcpy(&envelope.reply_member, bytes.data() + kReplyMemberAt, sizeof envelope.reply_member);
  std::memcpy(&envelope.sent_at_ns, bytes.data() + kSentAtAt, sizeof envelope.sent_at_ns);
  Result<MessageView> message = decode(bytes.subspan(kEnvelopeBytes), names);
  if (!message) return message.error();
  return EnvelopedMessage{envelope, message.value()};
}

}  // namespace exobus
