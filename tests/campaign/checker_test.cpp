// The campaign's checker finds each kind of broken promise in a hand-made history.
#include <gtest/gtest.h>

#include "checker.hpp"

namespace exobus::campaign {
namespace {

constexpr std::uint32_t kOrder = 0;  // order.placed: billing (0) and shipping (1)
constexpr std::uint32_t kAudit = 1;  // audit.note: audit (2)

History delivered_and_acked_everywhere() {
  History history;
  history.sends = {{1, 0, kOrder}, {1, 1, kAudit}};
  history.deliveries = {{1, 0, 0, 5, 0}, {1, 0, 1, 6, 0}, {1, 1, 2, 7, 0}};
  history.acks = {{1, 0, 0}, {1, 0, 1}, {1, 1, 2}};
  return history;
}

TEST(CampaignChecker, PassesACompleteHistory) {
  const CheckReport report = check(delivered_and_acked_everywhere());
  EXPECT_TRUE(report.passed());
  EXPECT_EQ(report.sent, 2u);
  EXPECT_EQ(report.deliveries, 3u);
}

TEST(CampaignChecker, FanOutMissingOneTypeIsLost) {
  History history = delivered_and_acked_everywhere();
  history.acks.erase(history.acks.begin() + 1);  // shipping never acked order 1/0
  const CheckReport report = check(history);
  EXPECT_FALSE(report.passed());
  EXPECT_EQ(report.lost, 1u);
}

TEST(CampaignChecker, SecondUnflaggedDeliveryToATypeIsADuplicate) {
  History history = delivered_and_acked_everywhere();
  history.deliveries.push_back({1, 0, 0, 9, 0});
  EXPECT_EQ(check(history).unflagged_duplicates, 1u);
}

TEST(CampaignChecker, FlaggedRedeliveryIsAllowed) {
  History history = delivered_and_acked_everywhere();
  history.deliveries.push_back({1, 0, 0, 9, 1});
  const CheckReport report = check(history);
  EXPECT_TRUE(report.passed());
  EXPECT_EQ(report.redeliveries, 1u);
}

TEST(CampaignChecker, DeliveryToANonSubscriberIsMisrouted) {
  History history = delivered_and_acked_everywhere();
  history.deliveries.push_back({1, 1, 0, 5, 0});
  EXPECT_EQ(check(history).misrouted, 1u);
}

TEST(CampaignChecker, RefusedSendThatIsDeliveredFails) {
  History history = delivered_and_acked_everywhere();
  history.refusals = {{1, 2, kOrder}};
  EXPECT_TRUE(check(history).passed()) << "a refusal that left no trace";
  EXPECT_EQ(check(history).refused, 1u);
  history.deliveries.push_back({1, 2, 1, 6, 0});  // shipping got it: half a fan-out
  const CheckReport report = check(history);
  EXPECT_FALSE(report.passed());
  EXPECT_EQ(report.refused_delivered, 1u);
}

TEST(CampaignChecker, DeliveryOfAnUnconfirmedSendIsAllowed) {
  History history = delivered_and_acked_everywhere();
  history.deliveries.push_back({2, 0, 2, 7, 0});
  const CheckReport report = check(history);
  EXPECT_TRUE(report.passed());
  EXPECT_EQ(report.unconfirmed, 1u);
}

TEST(CampaignChecker, AckCutShortByAKillCountsWhenNothingCameBack) {
  History history = delivered_and_acked_everywhere();
  history.acks.erase(history.acks.begin());
  history.interrupted_acks.push_back({1, 0, 0});
  const CheckReport report = check(history);
  EXPECT_TRUE(report.passed());
  EXPECT_EQ(report.acks_in_doubt, 1u);
}

TEST(CampaignChecker, InterruptedAckIsTheLastLineOfItsFile) {
  const std::filesystem::path directory = std::filesystem::temp_directory_path() / ("checker-" + std::to_string(::getpid()));
  std::filesystem::create_directories(directory);
  {
    HistoryWriter cut(directory / "cut.log");
    cut.delivered(1, 0, 0, 5, 0, "7e8a8f3e-4f3a-4b9e-9d59-2b1c3a4d5e6f");
    cut.acking(1, 0, 0);
    HistoryWriter done(directory / "done.log");
    done.delivered(1, 1, 2, 6, 0, "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5");
    done.acking(1, 1, 2);
    done.acked(1, 1, 2);
    done.refused(1, 2, 1);
  }
  const History history = read_histories(directory);
  std::filesystem::remove_all(directory);
  ASSERT_EQ(history.interrupted_acks.size(), 1u);
  EXPECT_EQ(history.interrupted_acks[0].seq, 0u);
  EXPECT_EQ(history.acks.size(), 1u);
  ASSERT_EQ(history.refusals.size(), 1u);
  EXPECT_EQ(history.refusals[0].seq, 2u);
}

}  // namespace
}  // namespace exobus::campaign
