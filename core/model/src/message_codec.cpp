#include "exobus/message_codec.hpp"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "exobus/message_name.hpp"
#include "exobus/message_version.hpp"
#include "exobus/service_name.hpp"

namespace exobus {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the record is stored little-endian and read in place; a big-endian port needs byte swaps here");
static_assert(sizeof(double) == 8 && std::numeric_limits<double>::is_iec559);

// Field offsets, as drawn in message_codec.hpp.
constexpr std::size_t kMagicAt = 0;
constexpr std::size_t kFormatAt = 4;
constexpr std::size_t kFlagsAt = 5;
constexpr std::size_t kNameLengthAt = 6;
constexpr std::size_t kSenderLengthAt = 8;
constexpr std::size_t kEarlierDeliveriesAt = 10;
constexpr std::size_t kPayloadLengthAt = 12;
constexpr std::size_t kVersionAt = 16;
constexpr std::size_t kIdAt = 24;
constexpr std::size_t kRequestIdAt = 40;
constexpr std::size_t kResponseToAt = 56;
static_assert(kResponseToAt + 16 == kMessageHeaderBytes);

constexpr std::uint8_t kFlagReply = 0x01;

template <class T>
void store(std::byte* base, std::size_t at, T value) noexcept {
  std::memcpy(base + at, &value, sizeof value);
}

template <class T>
T load(const std::byte* base, std::size_t at) noexcept {
  T value;
  std::memcpy(&value, base + at, sizeof value);
  return value;
}

void store_uuid(std::byte* base, std::size_t at, const Uuid& uuid) noexcept {
  std::memcpy(base + at, uuid.bytes().data(), 16);
}

Uuid load_uuid(const std::byte* base, std::size_t at) noexcept {
  std::array<std::uint8_t, 16> bytes;
  std::memcpy(bytes.data(), base + at, 16);
  return Uuid(bytes);
}

Error corrupted(std::string what) {
  return Error{ErrorCode::corrupted, "message record is corrupted: " + std::move(what)};
}

}  // namespace

Message MessageView::to_message() const {
  return Message{std::string(name), version, std::string(payload), id, request_id, response_to, std::string(sender)};
}

MessageView view_of(const Message& message) noexcept {
  MessageView view;
  view.name = message.name;
  view.version = message.version;
  view.payload = message.payload;
  view.id = message.id;
  view.request_id = message.request_id;
  view.response_to = message.response_to;
  view.sender = message.sender;
  return view;
}

std::size_t encoded_size(const MessageView& message) noexcept {
  return kMessageHeaderBytes + message.name.size() + message.sender.size() + message.payload.size();
}

Result<std::size_t> encode(const MessageView& message, std::span<std::byte> out) {
  if (!is_valid_message_name(message.name)) return validate_message_name(message.name).error();
  if (!is_valid_service_name(message.sender)) {
    return Error{ErrorCode::invalid_name, "sender: " + validate_service_name(message.sender).error().message};
  }
  return encode_with_valid_names(message, out);
}

Result<std::size_t> encode_with_valid_names(const MessageView& message, std::span<std::byte> out) {
  Result<std::size_t> size = encode_around_payload(message, message.payload.size(), out);
  if (!size) return size;
  // memcpy with a null source is undefined even for zero bytes (an empty string_view's
  // data() may be null).
  if (!message.payload.empty()) {
    std::memcpy(out.data() + size.value() - message.payload.size(), message.payload.data(), message.payload.size());
  }
  return size;
}

Result<std::size_t> encode_around_payload(const MessageView& message, std::size_t payload_size,
                                          std::span<std::byte> out) {
  if (!is_valid_version(message.version)) {
    return Error{ErrorCode::invalid_version, "message " + quote_name(message.name) + " has version " +
                                                 version_text(message.version) +
                                                 "; a version is a finite number of at least 0"};
  }
  if (payload_size > std::numeric_limits<std::uint32_t>::max()) {
    return Error{ErrorCode::payload_too_large, "payload of " + quote_name(message.name) + " is " +
                                                   std::to_string(payload_size) +
                                                   " bytes; a message carries at most 4 GiB"};
  }
  const std::size_t size = kMessageHeaderBytes + message.name.size() + message.sender.size() + payload_size;
  if (size > out.size()) {
    return Error{ErrorCode::payload_too_large, "message " + quote_name(message.name) + " needs " +
                                                   std::to_string(size) + " bytes encoded but the buffer holds " +
                                                   std::to_string(out.size()) +
                                                   "; send a smaller payload or configure a larger size class"};
  }
  std::byte* base = out.data();
  store(base, kMagicAt, kMessageMagic);
  store(base, kFormatAt, kMessageFormatVersion);
  store(base, kFlagsAt, message.is_reply() ? kFlagReply : std::uint8_t{0});
  store(base, kNameLengthAt, static_cast<std::uint16_t>(message.name.size()));
  store(base, kSenderLengthAt, static_cast<std::uint16_t>(message.sender.size()));
  store(base, kEarlierDeliveriesAt, message.earlier_deliveries);
  store(base, kPayloadLengthAt, static_cast<std::uint32_t>(payload_size));
  store(base, kVersionAt, std::bit_cast<std::uint64_t>(message.version));
  store_uuid(base, kIdAt, message.id);
  store_uuid(base, kRequestIdAt, message.request_id);
  store_uuid(base, kResponseToAt, message.response_to.value_or(Uuid{}));
  std::byte* cursor = base + kMessageHeaderBytes;
  std::memcpy(cursor, message.name.data(), message.name.size());
  cursor += message.name.size();
  std::memcpy(cursor, message.sender.data(), message.sender.size());
  return size;
}

Result<MessageView> decode(std::span<const std::byte> bytes, NameCheck names) {
  if (bytes.size() < kMessageHeaderBytes) {
    return corrupted(std::to_string(bytes.size()) + " bytes is shorter than the " +
                     std::to_string(kMessageHeaderBytes) + "-byte header");
  }
  const std::byte* base = bytes.data();
  if (load<std::uint32_t>(base, kMagicAt) != kMessageMagic) return corrupted("bad magic number");
  if (const auto format = load<std::uint8_t>(base, kFormatAt); format != kMessageFormatVersion) {
    return corrupted("format version " + std::to_string(format) + ", expected " +
                     std::to_string(kMessageFormatVersion));
  }
  const auto flags = load<std::uint8_t>(base, kFlagsAt);
  if ((flags & ~kFlagReply) != 0) return corrupted("unknown flag bits set");

  // Summed in size_t from 16- and 32-bit fields, so the total cannot overflow.
  const std::size_t name_length = load<std::uint16_t>(base, kNameLengthAt);
  const std::size_t sender_length = load<std::uint16_t>(base, kSenderLengthAt);
  const std::size_t payload_length = load<std::uint32_t>(base, kPayloadLengthAt);
  const std::size_t total = kMessageHeaderBytes + name_length + sender_length + payload_length;
  if (total > bytes.size()) {
    return corrupted("lengths add up to " + std::to_string(total) + " bytes but only " + std::to_string(bytes.size()) +
                     " are available");
  }

  MessageView view;
  const char* text = reinterpret_cast<const char*>(base + kMessageHeaderBytes);
  view.name = std::string_view(text, name_length);
  view.sender = std::string_view(text + name_length, sender_length);
  view.payload = std::string_view(text + name_length + sender_length, payload_length);
  if (names == NameCheck::characters) {
    if (!is_valid_message_name(view.name)) return corrupted(validate_message_name(view.name).error().message);
    if (!is_valid_service_name(view.sender)) return corrupted(validate_service_name(view.sender).error().message);
  }

  view.version = std::bit_cast<double>(load<std::uint64_t>(base, kVersionAt));
  if (!is_valid_version(view.version)) return corrupted("version is not a finite number of at least 0");
  view.id = load_uuid(base, kIdAt);
  view.request_id = load_uuid(base, kRequestIdAt);
  const Uuid response_to = load_uuid(base, kResponseToAt);
  if ((flags & kFlagReply) != 0) {
    view.response_to = response_to;
  } else if (!response_to.is_nil()) {
    return corrupted("response_to is set on a message not flagged as a reply");
  }
  view.earlier_deliveries = load<std::uint16_t>(base, kEarlierDeliveriesAt);
  view.encoded_size = total;
  return view;
}

}  // namespace exobus
