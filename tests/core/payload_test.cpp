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
    for (const char* payload : {R"({"name": "Jean-Luc Picard"})", "[1, 2.5, -3e10]", "\"text\"", "42", "true",
                                "null", "  {}\n"}) {
        EXPECT_TRUE(check_payload(payload).ok()) << payload;
    }
}

TEST(Payload, MalformedJsonPayloadIsRejectedWithOffset) {
    expect_malformed(R"({"name": })", "at byte offset 9");
}

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

}  // namespace
}  // namespace exobus
