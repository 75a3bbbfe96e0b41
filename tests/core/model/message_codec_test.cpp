#include "exobus/message_codec.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace exobus {
namespace {

Message sample_command() {
  Message message;
  message.name = "user.create";
  message.version = 1.2;
  message.payload = R"({"name": "Jean-Luc Picard"})";
  message.id = Uuid::parse("7294be20-e034-11e5-bbcc-1d18f38c4e43").value();
  message.request_id = Uuid::parse("23d09070-e098-11e5-91a5-a7f02faca148").value();
  message.sender = "web";
  return message;
}

Message sample_reply() {
  Message message = sample_command();
  message.name = "user.create.ok";
  message.sender = "users";
  message.response_to = Uuid::parse("89934740-e034-11e5-bbcc-1d18f38c4e43").value();
  return message;
}

std::vector<std::byte> encode_to_vector(const Message& message) {
  std::vector<std::byte> buffer(encoded_size(message));
  const auto written = encode(message, buffer);
  EXPECT_TRUE(written.ok()) << written.error().message;
  return buffer;
}

void expect_same(const MessageView& view, const Message& message) {
  EXPECT_EQ(view.name, message.name);
  EXPECT_EQ(view.version, message.version);
  EXPECT_EQ(view.payload, message.payload);
  EXPECT_EQ(view.id, message.id);
  EXPECT_EQ(view.request_id, message.request_id);
  EXPECT_EQ(view.response_to, message.response_to);
  EXPECT_EQ(view.sender, message.sender);
}

void expect_corrupted(std::span<const std::byte> bytes, std::string_view mentions) {
  const auto decoded = decode(bytes);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().code, ErrorCode::corrupted);
  EXPECT_NE(decoded.error().message.find(mentions), std::string::npos) << decoded.error().message;
}

TEST(MessageCodec, EncodedSizeIsHeaderPlusStrings) {
  const Message message = sample_command();
  EXPECT_EQ(encoded_size(message), kMessageHeaderBytes + 11 + 3 + message.payload.size());
}

TEST(MessageCodec, CommandRoundTrips) {
  const Message message = sample_command();
  const auto buffer = encode_to_vector(message);
  const auto decoded = decode(buffer);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  expect_same(*decoded, message);
  EXPECT_FALSE(decoded->is_reply());
  EXPECT_EQ(decoded->encoded_size, buffer.size());
}

TEST(MessageCodec, ReplyRoundTripsWithResponseTo) {
  const Message message = sample_reply();
  const auto buffer = encode_to_vector(message);
  const auto decoded = decode(buffer);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_TRUE(decoded->is_reply());
  expect_same(*decoded, message);
  EXPECT_EQ(decoded->to_message().response_to, message.response_to);
}

TEST(MessageCodec, EncodingAroundAPayloadWrittenLaterGivesTheSameRecord) {
  const Message message = sample_command();
  const auto whole = encode_to_vector(message);
  std::vector<std::byte> in_place(whole.size() + 16, std::byte{0xAB});
  MessageView without_payload = view_of(message);
  without_payload.payload = {};
  const Result<std::size_t> size = encode_around_payload(without_payload, message.payload.size(), in_place);
  ASSERT_TRUE(size.ok()) << size.error().message;
  ASSERT_EQ(size.value(), whole.size());
  std::memcpy(in_place.data() + size.value() - message.payload.size(), message.payload.data(), message.payload.size());
  in_place.resize(size.value());
  EXPECT_EQ(in_place, whole);

  std::vector<std::byte> small(whole.size() - 1);
  const Result<std::size_t> refused = encode_around_payload(without_payload, message.payload.size(), small);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::payload_too_large);
}

TEST(MessageCodec, EmptyPayloadRoundTrips) {
  Message message = sample_command();
  message.payload.clear();
  const auto buffer = encode_to_vector(message);
  const auto decoded = decode(buffer);
  ASSERT_TRUE(decoded.ok());
  EXPECT_TRUE(decoded->payload.empty());
}

TEST(MessageCodec, TrailingBytesOfAChunkAreIgnored) {
  const Message message = sample_command();
  std::vector<std::byte> chunk(256, std::byte{0xAB});
  const auto written = encode(message, chunk);
  ASSERT_TRUE(written.ok());
  const auto decoded = decode(chunk);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->encoded_size, *written);
  expect_same(*decoded, message);
}

TEST(MessageCodec, HeaderIsLittleEndianAsDocumented) {
  const auto buffer = encode_to_vector(sample_command());
  EXPECT_EQ(buffer[0], std::byte{'E'});
  EXPECT_EQ(buffer[3], std::byte{'M'});
  EXPECT_EQ(buffer[4], std::byte{kMessageFormatVersion});
  EXPECT_EQ(buffer[6], std::byte{11});  // name length, low byte first
  EXPECT_EQ(buffer[7], std::byte{0});
  EXPECT_EQ(buffer[24], std::byte{0x72});  // id, RFC 4122 byte order
  EXPECT_EQ(std::memcmp(buffer.data() + kMessageHeaderBytes, "user.create", 11), 0);
}

TEST(MessageCodec, EncodeIntoTooSmallBufferFailsWithSizes) {
  const Message message = sample_command();
  std::vector<std::byte> buffer(encoded_size(message) - 1);
  const auto written = encode(message, buffer);
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.error().code, ErrorCode::payload_too_large);
  EXPECT_NE(written.error().message.find(std::to_string(encoded_size(message)) + " bytes"), std::string::npos);
}

TEST(MessageCodec, EncodeRejectsInvalidName) {
  Message message = sample_command();
  message.name = "bad\nname";
  std::vector<std::byte> buffer(512);
  const auto written = encode(message, buffer);
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.error().code, ErrorCode::invalid_name);
}

TEST(MessageCodec, EncodeRejectsInvalidSender) {
  Message message = sample_command();
  message.sender = "";
  std::vector<std::byte> buffer(512);
  const auto written = encode(message, buffer);
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.error().code, ErrorCode::invalid_name);
  EXPECT_NE(written.error().message.find("sender"), std::string::npos);
}

TEST(MessageCodec, EncodeRejectsNonFiniteOrNegativeVersion) {
  std::vector<std::byte> buffer(512);
  for (const double version :
       {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(), -1.0}) {
    Message message = sample_command();
    message.version = version;
    const auto written = encode(message, buffer);
    ASSERT_FALSE(written.ok()) << version;
    EXPECT_EQ(written.error().code, ErrorCode::invalid_version);
  }
}

TEST(MessageCodec, DecodeRejectsBufferShorterThanHeader) {
  const auto buffer = encode_to_vector(sample_command());
  expect_corrupted(std::span(buffer).first(kMessageHeaderBytes - 1), "shorter than");
  expect_corrupted({}, "shorter than");
}

TEST(MessageCodec, DecodeRejectsBadMagic) {
  auto buffer = encode_to_vector(sample_command());
  buffer[0] = std::byte{'X'};
  expect_corrupted(buffer, "magic");
}

TEST(MessageCodec, DecodeRejectsUnknownFormatVersion) {
  auto buffer = encode_to_vector(sample_command());
  buffer[4] = std::byte{2};
  expect_corrupted(buffer, "format version 2");
}

TEST(MessageCodec, DecodeRejectsUnknownFlags) {
  auto buffer = encode_to_vector(sample_command());
  buffer[5] = std::byte{0x02};
  expect_corrupted(buffer, "flag");
}

TEST(MessageCodec, EarlierDeliveriesRoundTrip) {
  const Message message = sample_command();
  MessageView relayed = view_of(message);
  relayed.earlier_deliveries = 513;
  std::vector<std::byte> buffer(encoded_size(relayed));
  ASSERT_TRUE(encode(relayed, buffer).ok());
  const auto decoded = decode(buffer);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded.value().earlier_deliveries, 513);
  const auto first_sent = decode(encode_to_vector(message));
  ASSERT_TRUE(first_sent.ok());
  EXPECT_EQ(first_sent.value().earlier_deliveries, 0);
}

TEST(MessageCodec, DecodeRejectsPayloadLengthPastTheEnd) {
  auto buffer = encode_to_vector(sample_command());
  const std::uint32_t huge = 0xffffffff;
  std::memcpy(buffer.data() + 12, &huge, sizeof huge);
  expect_corrupted(buffer, "only " + std::to_string(buffer.size()) + " are available");
}

TEST(MessageCodec, DecodeRejectsRecordTruncatedByOneByte) {
  const auto buffer = encode_to_vector(sample_command());
  expect_corrupted(std::span(buffer).first(buffer.size() - 1), "are available");
}

TEST(MessageCodec, DecodeRejectsEmptyName) {
  auto buffer = encode_to_vector(sample_command());
  buffer[6] = std::byte{0};
  expect_corrupted(buffer, "empty");
}

TEST(MessageCodec, DecodeRejectsNameWithControlCharacter) {
  auto buffer = encode_to_vector(sample_command());
  buffer[kMessageHeaderBytes + 4] = std::byte{0x01};
  expect_corrupted(buffer, "control character");
}

TEST(MessageCodec, DecodeRejectsInvalidSender) {
  auto buffer = encode_to_vector(sample_command());
  buffer[kMessageHeaderBytes + 11] = std::byte{' '};
  expect_corrupted(buffer, "service name");
}

TEST(MessageCodec, DecodeRejectsNanVersion) {
  auto buffer = encode_to_vector(sample_command());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::memcpy(buffer.data() + 16, &nan, sizeof nan);
  expect_corrupted(buffer, "version");
}

TEST(MessageCodec, DecodeRejectsResponseToOnCommand) {
  auto buffer = encode_to_vector(sample_command());
  buffer[56] = std::byte{1};
  expect_corrupted(buffer, "response_to");
}

TEST(MessageCodec, RandomBytesNeverDecodeOutOfBounds) {
  // Under ASan an over-read fails this test; without it, the checks on the views do.
  std::mt19937 random(12345);
  const auto valid = encode_to_vector(sample_reply());
  for (int round = 0; round < 20000; ++round) {
    std::vector<std::byte> bytes = valid;
    const int flips = 1 + static_cast<int>(random() % 4);
    for (int i = 0; i < flips; ++i) bytes[random() % bytes.size()] = static_cast<std::byte>(random());
    bytes.resize(random() % (bytes.size() + 1));
    const auto decoded = decode(bytes);
    if (!decoded.ok()) {
      ASSERT_EQ(decoded.error().code, ErrorCode::corrupted);
      continue;
    }
    const auto* begin = reinterpret_cast<const char*>(bytes.data());
    const auto* end = begin + bytes.size();
    for (const std::string_view field : {decoded->name, decoded->sender, decoded->payload}) {
      ASSERT_GE(field.data(), begin);
      ASSERT_LE(field.data() + field.size(), end);
    }
    ASSERT_LE(decoded->encoded_size, bytes.size());
  }
}

}  // namespace
}  // namespace exobus
