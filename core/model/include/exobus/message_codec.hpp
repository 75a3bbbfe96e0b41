#pragma once

// Binary encoding of a Message, as it is stored in a shared-memory chunk.
//
// All integers little-endian; the header is 72 bytes and 8-byte aligned fields stay
// aligned when the chunk is.
//
//  0       4   5   6       8       10      12              16
//  +-------+---+---+-------+-------+-------+---------------+
//  | magic |fmt|flg|nameLen|sndrLen|earlier|  payloadLen   |
//  +-------+---+---+-------+-------+-------+---------------+
//  16                              24
//  +-------------------------------+
//  | version (IEEE 754 binary64)   |
//  +-------------------------------+
//  24              40              56              72
//  +---------------+---------------+---------------+
//  |  id           |  request_id   |  response_to  |   UUIDs in RFC 4122 byte order;
//  +---------------+---------------+---------------+   response_to is zero unless flg bit 0
//  72
//  +------------------+-------------------+----------------------+
//  | name (nameLen)   | sender (sndrLen)  | payload (payloadLen) |
//  +------------------+-------------------+----------------------+
//
//  magic: "EXBM"; fmt: kMessageFormatVersion; flg: bit 0 = is a reply, other bits zero;
//  earlier: deliveries of the message before it entered this bus (set by a relay between
//  buses such as exobus-bridge; zero for a message first sent here).
//
// The whole record is written by the sending process before the chunk's handle is
// published; after that nobody writes it, and readers treat it as hostile input.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "exobus/error.hpp"
#include "exobus/message.hpp"

namespace exobus {

inline constexpr std::uint32_t kMessageMagic = 0x4d425845;  // "EXBM" read as little-endian
inline constexpr std::uint8_t kMessageFormatVersion = 1;
inline constexpr std::size_t kMessageHeaderBytes = 72;

// A decoded message whose strings point into the decoded buffer: valid only while that
// buffer is alive and unchanged.
struct MessageView {
  std::string_view name;
  double version = 1.0;
  // Bounds-checked but not parsed: the sender's library checked it (check_payload), and
  // re-parsing every delivery would double the cost of JSON. A receiver that parses it
  // must still handle a parse error, since a hostile peer can write anything.
  std::string_view payload;
  Uuid id;
  Uuid request_id;
  std::optional<Uuid> response_to;
  std::string_view sender;
  // Deliveries the message had before it entered this bus (a relay between buses sets it):
  // a receiver counts them with its own, so a message redelivered on the way says so.
  std::uint16_t earlier_deliveries = 0;
  // Bytes the record occupies at the front of the buffer; the rest of a chunk is ignored.
  std::size_t encoded_size = 0;

  bool is_reply() const noexcept { return response_to.has_value(); }
  Message to_message() const;
};

// The view of a message's fields (its encoded_size is not used).
MessageView view_of(const Message& message) noexcept;

// Bytes encode() writes for `message`.
std::size_t encoded_size(const MessageView& message) noexcept;
inline std::size_t encoded_size(const Message& message) noexcept { return encoded_size(view_of(message)); }

// Writes `message` at the front of `out`, returning the bytes written: the sender encodes
// straight from its arguments into shared memory, with no copy in between.
// Fails with ErrorCode::invalid_name (name or sender), ErrorCode::invalid_version, or
// ErrorCode::payload_too_large when `out` is smaller than encoded_size(message).
// Does not check the payload's JSON: that is check_payload's job, done once by the sender.
Result<std::size_t> encode(const MessageView& message, std::span<std::byte> out);
inline Result<std::size_t> encode(const Message& message, std::span<std::byte> out) {
  return encode(view_of(message), out);
}

// As encode(), for a sender whose message name and sender name come from a loaded
// configuration, where they were validated: the two name checks are skipped.
Result<std::size_t> encode_with_valid_names(const MessageView& message, std::span<std::byte> out);

// As encode_with_valid_names(), for a payload of `payload_size` bytes that the caller writes
// itself into the last payload_size bytes of the record (message.payload is ignored): the
// zero-copy send, where the application fills shared memory directly.
Result<std::size_t> encode_around_payload(const MessageView& message, std::size_t payload_size,
                                          std::span<std::byte> out);

// Whether decode() checks the characters of the name and the sender. A receiver that
// accepts a message only when both equal names of its loaded configuration (valid by
// construction) checks them by that comparison, and needs no second pass over them.
enum class NameCheck : std::uint8_t { characters, by_exact_match };

// Reads a record from the front of `bytes`. A pure function of its input that never reads
// outside `bytes`: any inconsistency (bad magic or format, unknown flag bits, a length past
// the end, an invalid name or sender unless the caller matches them exactly, a non-finite
// or negative version) is ErrorCode::corrupted.
Result<MessageView> decode(std::span<const std::byte> bytes, NameCheck names = NameCheck::characters);

}  // namespace exobus
