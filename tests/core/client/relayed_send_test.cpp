// A relayed send (SendOptions::relayed), as exobus-bridge makes one for a message that comes
// from another host's bus: it keeps its id, counts its earlier deliveries, and reaches the
// one type it was carried for, not the others that receive its name.
#include <gtest/gtest.h>

#include <future>
#include <vector>

#include "../config/config_files.hpp"
#include "exobus/test_bus.hpp"

namespace exobus {
namespace {

using namespace std::chrono_literals;

constexpr const char* kOrders = R"(name: orders
bus:
  max-instances: 8
  size-classes:
    - { size: 256, count: 64 }
services:
  web:
    config:
      sends: [order.place]
      receives: [order.placed]
  ledger:
    config:
      receives: [order.place]
  shipping:
    config:
      receives: [ship]
      sends: [ship.ok]
      message-translation:
        - { public: order.place, internal: ship }
        - { public: order.placed, internal: ship.ok }
)";

class RelayedSendTest : public testing::ConfigFiles {
 protected:
  void SetUp() override {
    ConfigFiles::SetUp();
    Result<std::unique_ptr<TestBus>> created = TestBus::create(write("application.yml", kOrders));
    ASSERT_TRUE(created.ok()) << created.error().message;
    bus = std::move(created).value();
  }
  void TearDown() override {
    bus.reset();
    ConfigFiles::TearDown();
  }
  std::unique_ptr<TestBus> bus;
};

TEST_F(RelayedSendTest, ARelayedMessageKeepsItsIdAndReachesOnlyTheTypeItWasCarriedFor) {
  const Uuid id = Uuid::generate();

  ASSERT_TRUE(bus->send("web", "order.place", R"({"n":1})", SendOptions().relayed(id, 0, "shipping")).ok());
  Result<ObservedMessage> shipped = bus->wait_for("ship");

  ASSERT_TRUE(shipped.ok()) << shipped.error().message;
  EXPECT_EQ(shipped.value().receiver, "shipping");
  EXPECT_EQ(shipped.value().message.id, id);
  EXPECT_FALSE(shipped.value().message.redelivered()) << "no delivery before this bus";
  EXPECT_FALSE(bus->wait_for("order.place", 50ms).ok()) << "ledger got it where it was first sent";
}

TEST_F(RelayedSendTest, DeliveriesBeforeThisBusAreCountedSoTheCopyIsFlaggedRedelivered) {
  ASSERT_TRUE(bus->send("web", "order.place", "{}", SendOptions().relayed(Uuid::generate(), 3, "ledger")).ok());

  Result<ObservedMessage> recorded = bus->wait_for("order.place");

  ASSERT_TRUE(recorded.ok()) << recorded.error().message;
  EXPECT_EQ(recorded.value().message.deliveries, 3u);
  EXPECT_TRUE(recorded.value().message.redelivered());
}

TEST_F(RelayedSendTest, RelayedToATypeThatDoesNotReceiveTheNameIsUnknownMessage) {
  const Result<void> refused = bus->send("web", "order.place", "{}", SendOptions().relayed(Uuid::generate(), 0, "web"));

  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::unknown_message) << refused.error().message;
  EXPECT_TRUE(bus->received().empty()) << "nobody has it";
}

TEST_F(RelayedSendTest, APlainSendStillFansOutToEveryReceivingTypeWithANewId) {
  ASSERT_TRUE(bus->send("web", "order.place", "{}").ok());

  Result<ObservedMessage> first = bus->wait_for("order.place");
  Result<ObservedMessage> second = bus->wait_for("ship");

  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first.value().message.id, second.value().message.id);
  EXPECT_FALSE(first.value().message.id.is_nil());
}

TEST_F(RelayedSendTest, RepliesSentToTheReplyAddressOfACommandReachTheInstanceThatSentIt) {
  Result<std::unique_ptr<Service>> connected = bus->connect("shipping");
  ASSERT_TRUE(connected.ok()) << connected.error().message;
  std::unique_ptr<Service> shipping = std::move(connected).value();
  std::promise<ReplyAddress> address;
  shipping->on("ship", [&](Delivery& delivery) { address.set_value(delivery.reply_address().value()); });
  ASSERT_TRUE(shipping->start().ok());
  std::vector<Reply> replies;  // the reply thread's until `ended` is set
  std::promise<void> ended;
  ASSERT_TRUE(bus->send(
                     "web", "order.place", "{}",
                     [&](const Reply& reply) {
                       replies.push_back(reply);
                       if (reply.timed_out) ended.set_value();
                       return ReplyControl::more;
                     },
                     500ms)
                  .ok());

  const ReplyAddress to = address.get_future().get();
  EXPECT_EQ(to.requester, "web");
  ASSERT_TRUE(shipping->reply_to(to, "ship.ok", R"({"part":1})").ok());
  ASSERT_TRUE(shipping->reply_to(to, "ship.ok", R"({"part":2})").ok());
  // The last call is the timeout, past the reply window.
  ASSERT_EQ(ended.get_future().wait_for(5s), std::future_status::ready);
  shipping->stop();

  ASSERT_EQ(replies.size(), 3u) << "two replies, then the timeout";
  EXPECT_EQ(replies[0].outcome, "order.placed") << "the requester's name for shipping's ship.ok";
  EXPECT_EQ(replies[0].payload, R"({"part":1})");
  EXPECT_EQ(replies[0].message.response_to, to.command);
  EXPECT_EQ(replies[0].message.sender, "shipping");
  EXPECT_EQ(replies[1].payload, R"({"part":2})");
  EXPECT_TRUE(replies[2].timed_out);
}

TEST_F(RelayedSendTest, AReplyToATypeThatIsNoneOfTheApplicationsIsUnknownMessage) {
  Result<std::unique_ptr<Service>> connected = bus->connect("shipping");
  ASSERT_TRUE(connected.ok());

  const Result<void> refused = connected.value()->reply_to({Uuid::generate(), "stranger", 0}, "ship.ok", "{}");

  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::unknown_message);
}

}  // namespace
}  // namespace exobus
