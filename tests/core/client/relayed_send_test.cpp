// A relayed send (SendOptions::relayed), as exobus-bridge makes one for a message that comes
// from another host's bus: it keeps its id, counts its earlier deliveries, and reaches the
// one type it was carried for, not the others that receive its name.
#include <gtest/gtest.h>

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
  ledger:
    config:
      receives: [order.place]
  shipping:
    config:
      receives: [ship]
      message-translation:
        - { public: order.place, internal: ship }
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

}  // namespace
}  // namespace exobus
