// Message versions: what parses, and that a version reads back exactly as it was written.
#include "exobus/message_version.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace exobus {
namespace {

TEST(MessageVersion, DecimalNumbersParse) {
  EXPECT_EQ(parse_version("1").value(), 1.0);
  EXPECT_EQ(parse_version("1.2").value(), 1.2);
  EXPECT_EQ(parse_version("0").value(), 0.0);
  EXPECT_EQ(parse_version("2.0").value(), 2.0);
  EXPECT_EQ(parse_version("10.25").value(), 10.25);
  EXPECT_EQ(parse_version("1e2").value(), 100.0);
}

TEST(MessageVersion, AnythingButANonNegativeNumberIsInvalidVersion) {
  for (const char* text : {"", "-1", "+1", "1.2.3", "v1", "1 ", " 1", "inf", "nan", "0x10", "01", ".5", "1e999"}) {
    const Result<double> parsed = parse_version(text);
    ASSERT_FALSE(parsed.ok()) << "'" << text << "' parsed as " << parsed.value();
    EXPECT_EQ(parsed.error().code, ErrorCode::invalid_version) << text;
  }
}

TEST(MessageVersion, TheShortestTextReadsBackToTheSameNumber) {
  EXPECT_EQ(version_text(1.2), "1.2");
  EXPECT_EQ(version_text(1.0), "1");
  EXPECT_EQ(version_text(0.1 + 0.2), "0.30000000000000004") << "a sum is not the literal 0.3";
  for (const double version : {1.2, 3.14159, 1e-7, 123456.789, 0.0}) {
    EXPECT_EQ(parse_version(version_text(version)).value(), version) << version_text(version);
  }
}

TEST(MessageVersion, ValidVersionsAreFiniteAndNotNegative) {
  EXPECT_TRUE(is_valid_version(0.0));
  EXPECT_TRUE(is_valid_version(1.2));
  EXPECT_FALSE(is_valid_version(-0.5));
  EXPECT_FALSE(is_valid_version(std::numeric_limits<double>::infinity()));
  EXPECT_FALSE(is_valid_version(std::nan("")));
}

}  // namespace
}  // namespace exobus
