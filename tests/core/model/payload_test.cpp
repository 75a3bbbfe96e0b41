#include "exobus/payload.hpp"

#include <gtest/gtest.h>

#include <string>

namespace exobus {
namespace {

void expect_malformed(std::string_view payload, std::string_view mentions) {
  const auto result = check_payload(payload);
  ASSERT_FALSE(result.ok()) << payload;
  EXPECT_EQ(result.error().code, ErrorCode::malformed_json);
  EXPECT_NE(result.error().message.find(mentions), std::string::npos) << result.error().message;
}

TEST(Payload, EmptyPayloadMeansNoPayloadAndIsAccepted) { EXPECT_TRUE(check_payload("").ok()); }

TEST(Payload, AnyJsonValueIsAccepted) {
  for (const char* payload :
       {R"({"name": "Jean-Luc Picard"})", "[1, 2.5, -3e10]", "\"text\"", "42", "true", "null", "  {}\n"}) {
    EXPECT_TRUE(check_payload(payload).ok()) << payload;
  }
}

TEST(Payload, MalformedJsonPayloadIsRejectedWithOffset) { expect_malformed(R"({"name": })", "at byte offset 9"); }

TEST(Payload, ErrorGivesTheParserReason) { expect_malformed(R"({"name" 1})", "colon"); }

TEST(Payload, TrailingContentIsRejected) { expect_malformed("{} {}", "at byte offset 3"); }

TEST(Payload, TruncatedDocumentIsRejected) { expect_malformed(R"({"a": [1, 2)", "at byte offset 11"); }

TEST(Payload, WhitespaceOnlyIsRejected) { expect_malformed("   ", "empty"); }

TEST(Payload, RawNulByteIsRejectedWithItsOffset) {
  expect_malformed(std::string_view("{}\0{", 4), "NUL byte at offset 2");
}

TEST(Payload, InvalidUtf8InStringIsRejected) { expect_malformed("\"\xFF\"", "encoding"); }

TEST(Payload, DeepNestingIsCheckedWithoutExhaustingTheStack) {
  const std::size_t depth = 1'000'000;
  const std::string nested = std::string(depth, '[') + std::string(depth, ']');
  EXPECT_TRUE(check_payload(nested).ok());
  expect_malformed(std::string(depth, '['), "at byte offset 1000000");
}

TEST(Payload, StringsAreCheckedByteByByteAcrossEveryBlockBoundary) {
  // The scanner takes plain characters 64, then 16 at a time, and the last few in one
  // step that overlaps bytes already scanned: put each special byte at every position of
  // strings of every length up to past two 64-byte blocks.
  for (std::size_t length = 1; length <= 140; ++length) {
    for (std::size_t at = 0; at < length; ++at) {
      std::string text = "\"" + std::string(length, 'a') + "\"";
      ASSERT_TRUE(check_payload(text).ok()) << length;
      text[1 + at] = '"';
      EXPECT_FALSE(check_payload(text).ok()) << "early quote at " << at << " of " << length;
      text[1 + at] = '\x01';
      EXPECT_FALSE(check_payload(text).ok()) << "control at " << at << " of " << length;
      text[1 + at] = '\xff';
      EXPECT_FALSE(check_payload(text).ok()) << "bad UTF-8 at " << at << " of " << length;
      text[1 + at] = '\\';
      EXPECT_FALSE(check_payload(text).ok()) << "lone backslash at " << at << " of " << length;
      text.replace(1 + at, 1, "\xc3\xa9");  // é
      EXPECT_TRUE(check_payload(text).ok()) << "UTF-8 at " << at << " of " << length;
      text.replace(1 + at, 2, "\\n");
      EXPECT_TRUE(check_payload(text).ok()) << "escape at " << at << " of " << length;
    }
  }
}

TEST(Payload, Utf8IsStrict) {
  for (const char* good :
       {"\"\xe0\xa0\x80\"", "\"\xed\x9f\xbf\"", "\"\xf0\x90\x80\x80\"", "\"\xf4\x8f\xbf\xbf\"", "\"\x7f\""}) {
    EXPECT_TRUE(check_payload(good).ok()) << good;
  }
  // Overlong, surrogate, beyond U+10FFFF, cut short, lone continuation.
  for (const char* bad : {"\"\xc0\xaf\"", "\"\xe0\x9f\xbf\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"",
                          "\"\xe2\x82\"", "\"\x80\"", "\"\xf5\x80\x80\x80\""}) {
    expect_malformed(bad, "encoding");
  }
}

TEST(Payload, EscapesAndSurrogatePairs) {
  EXPECT_TRUE(check_payload(R"("\" \\ \/ \b \f \n \r \t \u00e9 \uD83D\uDE00")").ok());
  EXPECT_TRUE(check_payload(R"("\udc00")").ok()) << "a lone low surrogate passes, as in RapidJSON";
  expect_malformed(R"("\uD83D")", "surrogate");
  expect_malformed(R"("\uD83D\u0041")", "surrogate");
  expect_malformed(R"("\x")", "escape");
  expect_malformed(R"("\u12G4")", "hex digit");
}

TEST(Payload, NumbersFollowTheGrammar) {
  for (const char* good : {"0", "-0", "12", "1.5", "-1.5e10", "1E+2", "1e-2", "1e400"}) {
    EXPECT_TRUE(check_payload(good).ok()) << good;
  }
  for (const char* bad : {"-", "01", "1.", ".5", "1e", "1e+", "+1", "0x10", "NaN", "Infinity"}) {
    EXPECT_FALSE(check_payload(bad).ok()) << bad;
  }
}

TEST(Payload, ContainersNeedTheirPunctuation) {
  for (const char* bad : {"[1,]", "[,1]", "{\"a\":1,}", "{\"a\"}", "{1:2}", "[1 2]", "{\"a\":1 \"b\":2}", "]", "[}",
                          "tru", "nul", "[true false]"}) {
    EXPECT_FALSE(check_payload(bad).ok()) << bad;
  }
  EXPECT_TRUE(check_payload(R"({"a": [1, {"b": [], "c": {}}, "x"], "d": null})").ok());
}

}  // namespace
}  // namespace exobus
