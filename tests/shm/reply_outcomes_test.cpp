// The table of replies by outcome: threads racing to name the same and different outcomes
// claim one entry per name and lose no count; names past the table's room, and a table a
// hostile instance filled with garbage, still count every reply and end the scan.
#include "exobus/shm/reply_outcomes.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

namespace exobus::shm {
namespace {

std::uint64_t replies_named(const ReplyOutcomes& outcomes, std::string_view name) {
  std::uint64_t replies = 0;
  for (const OutcomeCount& entry : outcomes.named) {
    if (entry.name_hash.load() == outcome_hash(name)) replies += entry.replies.load();
  }
  return replies;
}

TEST(ReplyOutcomes, ThreadsRacingOverFourNamesClaimOneEntryEachAndLoseNoReply) {
  constexpr unsigned kThreads = 8, kReplies = 20000;
  const std::vector<std::string> names{"user.created", "user.exists", "user.invalid", "user.created.v2"};
  for (int round = 0; round < 20; ++round) {
    ReplyOutcomes outcomes;
    clear(outcomes);
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (unsigned n = 0; n < kReplies; ++n) count_reply(outcomes, outcome_hash(names[(n + t) % names.size()]));
      });
    }
    for (std::thread& thread : threads) thread.join();
    std::set<std::uint64_t> claimed;
    for (const OutcomeCount& entry : outcomes.named) {
      if (entry.name_hash.load() == 0) continue;
      EXPECT_TRUE(claimed.insert(entry.name_hash.load()).second) << "a name claimed twice";
    }
    EXPECT_EQ(claimed.size(), names.size());
    for (const std::string& name : names) EXPECT_EQ(replies_named(outcomes, name), kThreads * kReplies / names.size());
    EXPECT_EQ(outcomes.others.load(), 0u);
  }
}

TEST(ReplyOutcomes, NamesPastTheTableCountAmongTheOthers) {
  ReplyOutcomes outcomes;
  clear(outcomes);
  for (std::size_t k = 0; k < kNamedOutcomes + 3; ++k) {
    for (std::size_t n = 0; n <= k; ++n) count_reply(outcomes, outcome_hash("outcome." + std::to_string(k)));
  }
  for (std::size_t k = 0; k < kNamedOutcomes; ++k)
    EXPECT_EQ(replies_named(outcomes, "outcome." + std::to_string(k)), k + 1);
  EXPECT_EQ(outcomes.others.load(), (kNamedOutcomes + 1) + (kNamedOutcomes + 2) + (kNamedOutcomes + 3));
}

TEST(ReplyOutcomes, ATableFullOfGarbageStillCountsEveryReply) {
  ReplyOutcomes outcomes;
  for (std::size_t k = 0; k < kNamedOutcomes; ++k) {
    outcomes.named[k].name_hash.store(0x9e3779b97f4a7c15ull * (k + 1));
    outcomes.named[k].replies.store(~std::uint64_t{0} - k);
  }
  outcomes.others.store(41);
  count_reply(outcomes, outcome_hash("user.created"));
  EXPECT_EQ(outcomes.others.load(), 42u);
  EXPECT_EQ(outcome_hash(""), 0xcbf29ce484222325ull) << "FNV-1a's offset basis";
  EXPECT_NE(outcome_hash("user.created"), 0u);
}

}  // namespace
}  // namespace exobus::shm
