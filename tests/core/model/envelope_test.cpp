#include "exobus/envelope.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace exobus {
namespace {

MessageView sample_command() {
  MessageView message;
  message.name = "user.create";
  message.payload = R"({"name": "Jean-Luc Picard"})";
  message.id = Uuid::parse("7294be20-e034-11e5-bbcc-1d18f38c4e43").value();
  message.request_id = Uuid::parse("23d09070-e098-11e5-91a5-a7f02faca148").value();
  message.sender = "web";
  return message;
}

std::vector<std::byte> enveloped(const Envelope& envelope, const MessageView& message) {
  std::vector<std::byte> chunk(enveloped_size(message), std::byte{0xee});  // no zeros to hide behind
  const Result<std::size_t> written = encode_enveloped(envelope, message, chunk);
  EXPECT_TRUE(written.ok()) << written.error().message;
  EXPECT_EQ(written.value(), chunk.size());
  return chunk;
}

TEST(Envelope, CarriesTheReplyMemberAndTheSendTimeBeforeTheMessage) {
  const std::vector<std::byte> chunk = enveloped({7, 0x0123456789abcdefULL}, sample_command());
  const Result<EnvelopedMessage> decoded = decode_enveloped(chunk);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded.value().envelope.reply_member, 7);
  EXPECT_EQ(decoded.value().envelope.sent_at_ns, 0x0123456789abcdefULL);
  EXPECT_EQ(decoded.value().message.name, "user.create");
  EXPECT_EQ(decoded.value().message.payload, sample_command().payload);
}

TEST(Envelope, IsLaidOutAsDrawn) {
  const std::vector<std::byte> chunk = enveloped({0x0102, 0x1122334455667788ULL}, sample_command());
  ASSERT_EQ(kEnvelopeBytes, 16u);
  EXPECT_EQ(chunk[0], std::byte{0x02});
  EXPECT_EQ(chunk[1], std::byte{0x01});
  for (std::size_t reserved = 2; reserved < 8; ++reserved) EXPECT_EQ(chunk[reserved], std::byte{0}) << reserved;
  std::uint64_t sent_at = 0;
  std::memcpy(&sent_at, chunk.data() + 8, sizeof sent_at);
  EXPECT_EQ(sent_at, 0x1122334455667788ULL);
  const Result<MessageView> message = decode(std::span<const std::byte>(chunk).subspan(kEnvelopeBytes));
  ASSERT_TRUE(message.ok()) << message.error().message;
}

TEST(Envelope, AnUnstampedMessageSaysZero) {
  const Result<EnvelopedMessage> decoded = decode_enveloped(enveloped({3}, sample_command()));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded.value().envelope.sent_at_ns, 0u);
}

TEST(Envelope, RestampingChangesTheSendTimeAlone) {
  std::vector<std::byte> chunk = enveloped({5, 100}, sample_command());
  const std::vector<std::byte> before = chunk;
  restamp_sent_at(chunk, 987654321);
  const Result<EnvelopedMessage> decoded = decode_enveloped(chunk);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded.value().envelope.sent_at_ns, 987654321u);
  EXPECT_EQ(decoded.value().envelope.reply_member, 5);
  EXPECT_TRUE(std::equal(chunk.begin(), chunk.begin() + 8, before.begin()));
  EXPECT_TRUE(std::equal(chunk.begin() + kEnvelopeBytes, chunk.end(), before.begin() + kEnvelopeBytes));
}

TEST(Envelope, TooShortABufferIsAnError) {
  std::vector<std::byte> small(kEnvelopeBytes - 1);
  const Result<std::size_t> written = encode_enveloped({}, sample_command(), small);
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.error().code, ErrorCode::payload_too_large);
  const Result<EnvelopedMessage> decoded = decode_enveloped(small);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().code, ErrorCode::corrupted);
  restamp_sent_at(small, 1);  // too short to hold a send time: left alone
  EXPECT_EQ(small, std::vector<std::byte>(kEnvelopeBytes - 1));
}

}  // namespace
}  // namespace exobus
