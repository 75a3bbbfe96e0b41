#pragma once
// What a chunk holds: a 16-byte envelope for the bus itself, then the encoded message.
//
//  Envelope (16 bytes, little-endian, written once by the sender before it publishes)
//  0       2               8                               16
//  +-------+---------------+-------------------------------+-------------------------
//  |reply  | reserved (0)  |  sent at                      |  message (message_codec.hpp)
//  |member |               |                               |
//  +-------+---------------+-------------------------------+-------------------------
//  reply member: the sending instance's place among its type's instances: replies to this
//                command go to that reply channel of the link back to the sender's type. A
//                sender that lies here only sends its own replies to another of its own.
//  sent at:      when the sending library sent it, in nanoseconds of CLOCK_MONOTONIC (one
//                clock for every process of the host), or 0 when it did not look: senders
//                read the clock only while the daemon asks them to (DirectoryHeader::
//                observers), so a bus nobody watches pays no clock read. Receivers use it for
//                figures alone (queueing delay); a sender that lies here skews only the
//                figures of what it sends.
#include <chrono>
#include <cstdint>
#include <span>
#include <string>

#include "exobus/error.hpp"
#include "exobus/message_codec.hpp"

namespace exobus {

struct Envelope {
  std::uint16_t reply_member = 0;
  std::uint64_t sent_at_ns = 0;
};
inline constexpr std::size_t kEnvelopeBytes = 16;

// The clock of sent_at_ns. steady_clock is CLOCK_MONOTONIC on Linux: one clock for every
// process of the host, so a sender's stamp and a receiver's reading compare.
inline std::uint64_t envelope_clock_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

// Nanoseconds from `earlier` to `later`, two readings of that clock; 0 when `earlier` lies
// in the future (a lying sender's stamp).
inline std::uint64_t clock_ns_between(std::uint64_t earlier, std::uint64_t later) {
  return later > earlier ? later - earlier : 0;
}

struct EnvelopedMessage {
  Envelope envelope;
  MessageView message;
};

// Bytes a chunk needs for this message.
inline std::size_t enveloped_size(const MessageView& message) { return kEnvelopeBytes + encoded_size(message); }
// The message's name and sender must come from a loaded configuration (they are not
// checked again, see encode_with_valid_names).
Result<std::size_t> encode_enveloped(const Envelope& envelope, const MessageView& message, std::span<std::byte> out);
// The same around a payload of `payload_size` bytes that the caller writes in place, at the
// end of the record (see encode_around_payload).
Result<std::size_t> encode_enveloped_around_payload(const Envelope& envelope, const MessageView& message,
                                                    std::size_t payload_size, std::span<std::byte> out);
// Rewrites the sent-at field of an enveloped message the sender still owns: a loan is
// stamped when it is sent, not when it was lent.
void restamp_sent_at(std::span<std::byte> enveloped, std::uint64_t sent_at_ns);
// Treats the bytes as hostile, like decode().
Result<EnvelopedMessage> decode_enveloped(std::span<const std::byte> bytes, NameCheck names = NameCheck::characters);

}  // namespace exobus
