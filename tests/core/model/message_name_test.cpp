#include "exobus/message_name.hpp"

#include <gtest/gtest.h>

#include "exobus/service_name.hpp"

namespace exobus {
namespace {

void expect_invalid(std::string_view name, std::string_view mentions) {
  const auto result = validate_message_name(name);
  ASSERT_FALSE(result.ok()) << "accepted " << quote_name(name);
  EXPECT_EQ(result.error().code, ErrorCode::invalid_name);
  EXPECT_NE(result.error().message.find(mentions), std::string::npos) << result.error().message;
}

TEST(MessageName, DottedNamesAreValid) {
  EXPECT_TRUE(validate_message_name("user.create").ok());
  EXPECT_TRUE(validate_message_name("file.copy.in-progress").ok());
}

TEST(MessageName, NamesWithSpacesAreValid) { EXPECT_TRUE(validate_message_name("delete user").ok()); }

TEST(MessageName, NonAsciiUtf8IsValid) {
  EXPECT_TRUE(validate_message_name("benutzer.löschen").ok());
  EXPECT_TRUE(validate_message_name("注文.作成").ok());
  EXPECT_TRUE(validate_message_name("\xF0\x9F\x93\xA6.sent").ok());  // U+1F4E6
}

TEST(MessageName, EmptyNameIsRejected) { expect_invalid("", "empty"); }

TEST(MessageName, NameOfExactlyTheLimitIsValid) {
  EXPECT_TRUE(validate_message_name(std::string(kMaxMessageNameBytes, 'a')).ok());
}

TEST(MessageName, NameOverTheLimitIsRejectedWithItsLength) {
  expect_invalid(std::string(kMaxMessageNameBytes + 1, 'a'), "201 bytes long; the limit is 200");
}

TEST(MessageName, C0ControlCharacterIsRejectedWithItsPosition) {
  expect_invalid("user\tcreate", "U+0009 at byte 4");
  expect_invalid(std::string("user\0create", 11), "U+0000 at byte 4");
}

TEST(MessageName, DeleteCharacterIsRejected) { expect_invalid("user\x7f", "U+007F at byte 4"); }

TEST(MessageName, C1ControlCharacterIsRejected) { expect_invalid("ab\xC2\x85", "U+0085 at byte 2"); }

TEST(MessageName, InvalidLeadByteIsRejectedWithItsPosition) {
  expect_invalid("ab\xFF", "byte 2 cannot start a character");
  expect_invalid("ab\x80", "byte 2 cannot start a character");
}

TEST(MessageName, TruncatedSequenceIsRejected) { expect_invalid("ab\xE2\x82", "cut off at the end"); }

TEST(MessageName, OverlongEncodingIsRejected) {
  expect_invalid("\xC0\xAE", "byte 0 cannot start");  // overlong '.'
  expect_invalid("\xE0\x80\xAE", "unexpected byte at 1");
}

TEST(MessageName, SurrogateIsRejected) { expect_invalid("\xED\xA0\x80", "unexpected byte at 1"); }

TEST(MessageName, CodePointAboveUnicodeRangeIsRejected) { expect_invalid("\xF4\x90\x80\x80", "unexpected byte at 1"); }

TEST(MessageName, ComparisonIsByteForByte) {
  // Names are not case-folded or normalised: both spellings are valid and distinct.
  EXPECT_TRUE(validate_message_name("User.Create").ok());
  EXPECT_NE(std::string_view("User.Create"), std::string_view("user.create"));
  EXPECT_TRUE(validate_message_name("caf\xC3\xA9").ok());   // precomposed é
  EXPECT_TRUE(validate_message_name("cafe\xCC\x81").ok());  // e + combining accent
}

TEST(QuoteName, EscapesUnprintableBytesAndCutsLongNames) {
  EXPECT_EQ(quote_name("a\tb"), "'a\\x09b'");
  EXPECT_EQ(quote_name(std::string(70, 'x')), "'" + std::string(64, 'x') + "...'");
}

TEST(ServiceName, PortableNamesAreValid) {
  EXPECT_TRUE(validate_service_name("web").ok());
  EXPECT_TRUE(validate_service_name("users-v2_eu.1").ok());
}

TEST(ServiceName, EmptyNameIsRejected) {
  const auto result = validate_service_name("");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::invalid_name);
}

TEST(ServiceName, SpaceOrSlashIsRejectedWithPosition) {
  for (const char* name : {"a service", "a/b"}) {
    const auto result = validate_service_name(name);
    ASSERT_FALSE(result.ok()) << name;
    EXPECT_NE(result.error().message.find("at byte 1"), std::string::npos) << result.error().message;
  }
}

TEST(ServiceName, LeadingPunctuationIsRejected) {
  EXPECT_FALSE(validate_service_name("-web").ok());
  EXPECT_FALSE(validate_service_name(".web").ok());
}

TEST(ServiceName, NameOverLimitIsRejected) {
  EXPECT_TRUE(validate_service_name(std::string(kMaxServiceNameBytes, 's')).ok());
  EXPECT_FALSE(validate_service_name(std::string(kMaxServiceNameBytes + 1, 's')).ok());
}

}  // namespace
}  // namespace exobus
