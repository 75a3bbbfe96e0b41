// exobus tail's lines: ExoCom's form, the JSON form, and what they make of bytes a lying
// instance wrote in its trace (control characters, invalid UTF-8, lengths past the text).
#include "trace_line.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <string>

namespace exobus::cli {
namespace {

shm::TraceEntry delivered(std::string_view name, std::string_view internal_name, std::string_view payload) {
  shm::TraceEntry entry;
  entry.flags = shm::kTraceStamped;
  entry.delay_ns = 1'234'567;
  entry.sender_member = 2;
  entry.set_text(name, internal_name, payload);
  return entry;
}

TEST(TraceLine, ATranslatedDeliveryShowsBothNamesInExoComsForm) {
  const TraceLine line = TraceLine::of(delivered("users.create", "create", "{}"), "web", "users", 1);
  EXPECT_EQ(text_line(line, false), "web#2 --[ users.create ]-[ create ]-> users#1 (1.2ms)");
}

TEST(TraceLine, AnUntranslatedUnstampedRedeliveryShowsNoSecondNameNoDelayAndItsDeliveryNumber) {
  shm::TraceEntry entry = delivered("ping", "", "{\"n\":1}");
  entry.flags = shm::kTraceRedelivered;
  entry.deliveries = 1;
  const TraceLine line = TraceLine::of(entry, "web", "mail", 0);
  EXPECT_EQ(text_line(line, true), "web#2 --[ ping ]-> mail#0 (-) redelivered (delivery 2)  {\"n\":1}");
}

TEST(TraceLine, ACutPayloadEndsInAnEllipsisAndTheJsonSaysSo) {
  const std::string payload = "[" + std::string(400, '1') + "]";
  const TraceLine line = TraceLine::of(delivered("ping", "", payload), "web", "mail", 0);
  EXPECT_TRUE(text_line(line, true).ends_with("111..."));
  rapidjson::Document json;
  json.Parse(json_line(line, true).c_str());
  ASSERT_TRUE(json.IsObject());
  EXPECT_TRUE(json["payload_truncated"].GetBool());
  EXPECT_EQ(json["payload_size"].GetUint(), payload.size());
  EXPECT_EQ(json["delay_ns"].GetUint64(), 1'234'567u);
  EXPECT_EQ(json["sender_instance"].GetUint(), 2u);
  EXPECT_FALSE(json.HasMember("internal_name"));
}

TEST(TraceLine, ControlCharactersAndInvalidUtf8FromTheTraceArePrintedAsQuestionMarks) {
  const TraceLine line =
      TraceLine::of(delivered("evil\x1b[2J", "na\xffme", "{\"x\":\"\x07\xc3\xa9\"}"), "web", "mail", 0);
  EXPECT_EQ(line.name, "evil?[2J");
  EXPECT_EQ(line.internal_name, "na?me");
  EXPECT_EQ(line.payload_head, "{\"x\":\"?\xc3\xa9\"}");  // é is kept
  rapidjson::Document json;
  json.Parse(json_line(line, true).c_str());
  EXPECT_TRUE(json.IsObject()) << "the JSON line must parse";
}

TEST(TraceLine, AMultibyteCharacterCutByTheTruncationIsDropped) {
  // 186 bytes of text: the name (4) and 181 'a' leave one byte for the two of "é".
  const std::string payload = std::string(181, 'a') + "\xc3\xa9";
  const TraceLine line = TraceLine::of(delivered("ping", "", payload), "web", "mail", 0);
  EXPECT_EQ(line.payload_head, std::string(181, 'a'));
  EXPECT_TRUE(line.payload_truncated);
}

TEST(TraceLine, DelaysReadInTheirUnit) {
  EXPECT_EQ(delay_text(850), "850ns");
  EXPECT_EQ(delay_text(12'345), "12.3us");
  EXPECT_EQ(delay_text(1'234'567), "1.2ms");
  EXPECT_EQ(delay_text(2'050'000'000), "2.05s");
}

}  // namespace
}  // namespace exobus::cli
