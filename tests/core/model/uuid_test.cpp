#include "exobus/uuid.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <thread>
#include <unordered_set>
#include <vector>

namespace exobus {
namespace {

TEST(Uuid, DefaultIsNil) {
  EXPECT_TRUE(Uuid{}.is_nil());
  EXPECT_EQ(Uuid{}.to_string(), "00000000-0000-0000-0000-000000000000");
}

TEST(Uuid, GeneratedIdIsVersion4WithRfc4122Variant) {
  const Uuid id = Uuid::generate();
  EXPECT_FALSE(id.is_nil());
  EXPECT_EQ(id.bytes()[6] >> 4, 4);
  EXPECT_EQ(id.bytes()[8] >> 6, 2);
  const std::string text = id.to_string();
  EXPECT_EQ(text[14], '4');
  EXPECT_NE(std::string("89ab").find(text[19]), std::string::npos);
}

TEST(Uuid, GeneratedIdsDoNotRepeat) {
  std::unordered_set<Uuid> ids;
  for (int i = 0; i < 100000; ++i) ASSERT_TRUE(ids.insert(Uuid::generate()).second);
}

TEST(Uuid, ThreadsGenerateDistinctIds) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 10000;
  std::vector<std::vector<Uuid>> results(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&results, t] {
      for (int i = 0; i < kPerThread; ++i) results[t].push_back(Uuid::generate());
    });
  }
  for (auto& thread : threads) thread.join();
  std::set<Uuid> all;
  for (const auto& list : results) all.insert(list.begin(), list.end());
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kThreads * kPerThread));
}

TEST(Uuid, ForkedChildDoesNotRepeatParentIds) {
  (void)Uuid::generate();  // seed this thread's generator before forking
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const Uuid id = Uuid::generate();
    const ssize_t written = write(pipe_fds[1], id.bytes().data(), 16);
    _exit(written == 16 ? 0 : 1);
  }
  const Uuid parent_id = Uuid::generate();
  std::array<std::uint8_t, 16> child_bytes{};
  ASSERT_EQ(read(pipe_fds[0], child_bytes.data(), 16), 16);
  int status = 0;
  waitpid(child, &status, 0);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  EXPECT_NE(Uuid(child_bytes), parent_id);
}

TEST(Uuid, TextRoundTrips) {
  const Uuid id = Uuid::generate();
  const auto parsed = Uuid::parse(id.to_string());
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed.value(), id);
}

TEST(Uuid, ParsesSpecExampleToCanonicalLowercase) {
  const auto parsed = Uuid::parse("7294be20-e034-11e5-bbcc-1d18f38c4e43");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->to_string(), "7294be20-e034-11e5-bbcc-1d18f38c4e43");
  EXPECT_EQ(parsed->bytes()[0], 0x72);
  EXPECT_EQ(parsed->bytes()[15], 0x43);
}

TEST(Uuid, AcceptsUpperCaseHex) {
  const auto parsed = Uuid::parse("7294BE20-E034-11E5-BBCC-1D18F38C4E43");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->to_string(), "7294be20-e034-11e5-bbcc-1d18f38c4e43");
}

TEST(Uuid, RejectsWrongLength) {
  for (const char* text : {"", "7294be20-e034-11e5-bbcc-1d18f38c4e4", "7294be20-e034-11e5-bbcc-1d18f38c4e431",
                           "{7294be20-e034-11e5-bbcc-1d18f38c4e43}", " 7294be20-e034-11e5-bbcc-1d18f38c4e43"}) {
    const auto parsed = Uuid::parse(text);
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(parsed.error().code, ErrorCode::invalid_uuid);
    EXPECT_NE(parsed.error().message.find("characters"), std::string::npos);
  }
}

TEST(Uuid, RejectsMisplacedHyphen) {
  const auto parsed = Uuid::parse("7294be20ae034-11e5-bbcc-1d18f38c4e43");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().code, ErrorCode::invalid_uuid);
  EXPECT_NE(parsed.error().message.find("hyphen at position 8"), std::string::npos);
}

TEST(Uuid, RejectsHyphenWhereHexDigitBelongs) {
  const auto parsed = Uuid::parse("7294be20-e034-11e5-bbcc-1d18f38c4e4-");
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.error().message.find("position 35"), std::string::npos);
}

TEST(Uuid, RejectsNonHexCharacter) {
  const auto parsed = Uuid::parse("7294be20-e034-11e5-bbcc-1d18f38c4g43");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().code, ErrorCode::invalid_uuid);
  EXPECT_NE(parsed.error().message.find("non-hex character at position 33"), std::string::npos);
}

TEST(Uuid, OrdersLikeItsText) {
  const Uuid low = Uuid::parse("00000000-0000-0000-0000-0000000000ff").value();
  const Uuid high = Uuid::parse("00000000-0000-0000-0000-000000000100").value();
  EXPECT_LT(low, high);
  EXPECT_NE(low, high);
  EXPECT_EQ(low, Uuid::parse("00000000-0000-0000-0000-0000000000FF").value());
}

TEST(Uuid, EqualIdsHashEqually) {
  const Uuid id = Uuid::generate();
  const Uuid copy = Uuid::parse(id.to_string()).value();
  EXPECT_EQ(std::hash<Uuid>{}(id), std::hash<Uuid>{}(copy));
}

TEST(Uuid, IdsDifferingInOneByteHashDifferently) {
  const Uuid a = Uuid::parse("00000000-0000-0000-0000-000000000001").value();
  const Uuid b = Uuid::parse("00000000-0000-0000-0000-000000000002").value();
  const Uuid c = Uuid::parse("00000001-0000-0000-0000-000000000000").value();
  EXPECT_NE(std::hash<Uuid>{}(a), std::hash<Uuid>{}(b));
  EXPECT_NE(std::hash<Uuid>{}(a), std::hash<Uuid>{}(c));
}

}  // namespace
}  // namespace exobus
