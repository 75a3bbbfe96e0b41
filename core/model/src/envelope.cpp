#include "exobus/envelope.hpp"

#include <cstring>

namespace exobus {

namespace {

template <class EncodeMessage>
Result<std::size_t> encode_with_envelope(const Envelope& envelope, std::span<std::byte> out,
                                         EncodeMessage encode_message) {
  if (out.size() < kEnvelopeBytes) {
    return Error{ErrorCode::payload_too_large, "buffer too small for the message envelope"};
  }
  const std::uint16_t words[4] = {envelope.reply_member, 0, 0, 0};
  std::memcpy(out.data(), words, kEnvelopeBytes);
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

Result<EnvelopedMessage> decode_enveloped(std::span<const std::byte> bytes, NameCheck names) {
  if (bytes.size() < kEnvelopeBytes) {
    return Error{ErrorCode::corrupted, "chunk shorter than a message envelope"};
  }
  std::uint16_t words[4];
  std::memcpy(words, bytes.data(), kEnvelopeBytes);
  Result<MessageView> message = decode(bytes.subspan(kEnvelopeBytes), names);
  if (!message) return message.error();
  return EnvelopedMessage{{words[0]}, message.value()};
}

}  // namespace exobus
