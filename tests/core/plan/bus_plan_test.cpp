// How the daemon turns a configuration into the data segment's plan: ring numbering, each
// ring's settings, spares for reloads, lanes, leases, size classes and instance slots, and
// how a reload fits new service types into the rings laid out at creation.
#include "exobus/bus_plan.hpp"

#include <gtest/gtest.h>

#include <string>

#include "../config/config_files.hpp"

namespace exobus {
namespace {

// T = 2 configured + 8 spare types = 10; I = 4 + 1 instance slots.
constexpr const char* kShop = R"(name: shop
bus:
  max-instances: 4
  reply-inbox-capacity: 64
  size-classes:
    - { size: 512, count: 10 }
    - { size: 8192, count: 2 }
services:
  users:
    config:
      queue-capacity: 32
      ack-timeout-ms: 1500
      delivery-limit: 3
      prefetch: 4
  orders:
    config:
      queue-capacity: 8192
      ack-timeout-ms: 2500
      delivery-limit: 7
      prefetch: 16
)";
constexpr std::uint32_t kTypes = 2 + kSpareServiceTypes;
constexpr std::uint32_t kInstances = 4 + 1;

class BusPlanTest : public testing::ConfigFiles {
 protected:
  // Each load writes a file of its own, so a test can hold a configuration and its reload.
  Result<ApplicationConfig> load(std::string_view application_yml) {
    return load_application_config(write("application-" + std::to_string(++loads_) + ".yml", application_yml));
  }

  // The shop application with `extra` service entries appended.
  Result<ApplicationConfig> shop_with(const std::string& extra) { return load(std::string(kShop) + extra); }

 private:
  int loads_ = 0;
};

// `count` inline service entries named <prefix>0, <prefix>1, ...
std::string service_entries(const std::string& prefix, int count, const std::string& settings = "{}") {
  std::string entries;
  for (int n = 0; n < count; ++n) entries += "  " + prefix + std::to_string(n) + ": { config: " + settings + " }\n";
  return entries;
}

TEST_F(BusPlanTest, TypeQueuesAreTheFirstRingsInFileOrder) {
  const auto config = load(kShop);
  ASSERT_TRUE(config.ok()) << config.error().message;
  const BusPlan plan = plan_bus(config.value()).value();
  EXPECT_EQ(plan.type_slots, kTypes);
  EXPECT_EQ(plan.type_rings.size(), 2u);
  EXPECT_EQ(plan.type_rings.at("users"), 0);
  EXPECT_EQ(plan.type_rings.at("orders"), 1);
}

TEST_F(BusPlanTest, DeadLetterQueuesFollowTheTypeQueues) {
  const auto config = load(kShop);
  ASSERT_TRUE(config.ok()) << config.error().message;
  const BusPlan plan = plan_bus(config.value()).value();
  EXPECT_EQ(plan.dead_letter_ring(0), kTypes);
  EXPECT_EQ(plan.dead_letter_ring(kTypes - 1), 2 * kTypes - 1);
  ASSERT_EQ(plan.layout.rings.size(), 2 * kTypes + kInstances);
  for (std::uint16_t t = 0; t < kTypes; ++t) {
    EXPECT_EQ(plan.layout.rings[t].dead_letter_ring, kTypes + t) << "type ring " << t;
  }
}

TEST_F(BusPlanTest, InboxesFollowTheDeadLetterQueuesOnePerInstanceSlot) {
  const auto config = load(kShop);
  ASSERT_TRUE(config.ok()) << config.error().message;
  const BusPlan plan = plan_bus(config.value()).value();
  EXPECT_EQ(plan.inbox_ring(0), 2 * kTypes);
  EXPECT_EQ(plan.inbox_ring(kInstances - 1), 2 * kTypes + kInstances - 1);
  EXPECT_EQ(plan.layout.rings.size(), std::size_t{plan.inbox_ring(kInstances - 1)} + 1)
      << "the inboxes are the last rings";
}

TEST_F(BusPlanTest, EachTypeRingCarriesItsQueueSettings) {
  const auto config = load(kShop);
  ASSERT_TRUE(config.ok()) << config.error().message;
  const BusPlan plan = plan_bus(config.value()).value();
  const shm::RingSpec& users = plan.layout.rings[plan.type_rings.at("users")];
  EXPECT_EQ(users.capacity, 32u);
  EXPECT_EQ(users.lease_ms, 1500u);
  EXPECT_EQ(users.delivery_limit, 3);
  EXPECT_EQ(users.dead_letter_ring, plan.dead_letter_ring(0));
  const shm::RingSpec& orders = plan.layout.rings[plan.type_rings.at("orders")];
  EXPECT_EQ(orders.capacity, 8192u);
  EXPECT_EQ(orders.lease_ms, 2500u);
  EXPECT_EQ(orders.delivery_limit, 7);
  EXPECT_EQ(orders.dead_letter_ring, plan.dead_letter_ring(1));
}

TEST_F(BusPlanTest, SpareTypeRingsGetTheLargestCapacityAndTheirOwnDeadLetters) {
  const auto config = load(kShop);
  ASSERT_TRUE(config.ok()) << config.error().message;
  const BusPlan plan = plan_bus(config.value()).value();
  const ServiceTypeConfig defaults;
  for (std::uint16_t t = 2; t < kTypes; ++t) {
    const shm::RingSpec& spare = plan.layout.rings[t];
    EXPECT_EQ(spare.capacity, 8192u) << "spare ring " << t;
    EXPECT_EQ(spare.lease_ms, defaults.ack_timeout_ms) << "spare ring " << t;
    EXPECT_EQ(spare.delivery_limit, defaults.delivery_limit) << "spare ring " << t;
    EXPECT_EQ(spare.dead_letter_ring, plan.dead_letter_ring(t)) << "spare ring " << t;
  }
}

TEST_F(BusPlanTest, DeadLetterQueuesAreTerminal) {
  const auto config = load(kShop);
  ASSERT_TRUE(config.ok()) << config.error().message;
  const BusPlan plan = plan_bus(config.value()).value();
  for (std::uint32_t ring = kTypes; ring < 2 * kTypes; ++ring) {
    EXPECT_EQ(plan.layout.rings[ring].capacity, kDeadLetterCapacity) << "ring " << ring;
    EXPECT_EQ(plan.layout.rings[ring].dead_letter_ring, shm::kNoRing) << "ring " << ring;
  }
}

TEST_F(BusPlanTest, InboxesHoldTheConfiguredReplyCapacity) {
  const auto config = load(kShop);
  ASSERT_TRUE(config.ok()) << config.error().message;
  const BusPlan plan = plan_bus(config.value()).value();
  for (std::uint32_t instance = 0; instance < kInstances; ++instance) {
    const shm::RingSpec& inbox = plan.layout.rings[plan.inbox_ring(instance)];
    EXPECT_EQ(inbox.capacity, 64u) << "instance " << instance;
    EXPECT_EQ(inbox.dead_letter_ring, shm::kNoRing) << "instance " << instance;
  }
}

TEST_F(BusPlanTest, EveryLaneHasLeasesForTheLargestPrefetch) {
  const auto config = load(kShop);
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(plan_bus(config.value()).value().layout.leases_per_lane, 16u);
}

TEST_F(BusPlanTest, SizeClassesAreCopiedInOrder) {
  const auto config = load(kShop);
  ASSERT_TRUE(config.ok()) << config.error().message;
  const BusPlan plan = plan_bus(config.value()).value();
  ASSERT_EQ(plan.layout.size_classes.size(), 2u);
  EXPECT_EQ(plan.layout.size_classes[0].chunk_size, 512u);
  EXPECT_EQ(plan.layout.size_classes[0].chunk_count, 10u);
  EXPECT_EQ(plan.layout.size_classes[1].chunk_size, 8192u);
  EXPECT_EQ(plan.layout.size_classes[1].chunk_count, 2u);
}

TEST_F(BusPlanTest, InstanceSlotsAreMaxInstancesPlusTheDaemonsOwn) {
  const auto config = load(kShop);
  ASSERT_TRUE(config.ok()) << config.error().message;
  const BusPlan plan = plan_bus(config.value()).value();
  EXPECT_EQ(plan.instance_slots, kInstances);
  EXPECT_EQ(plan.layout.max_instances, kInstances);
  EXPECT_EQ(plan.layout.lanes_per_instance, kLanesPerInstance);
}

TEST_F(BusPlanTest, PlannedLayoutComputesWithEveryRingAsPlanned) {
  const auto config = load(kShop);
  ASSERT_TRUE(config.ok()) << config.error().message;
  const BusPlan plan = plan_bus(config.value()).value();
  const Result<shm::Layout> layout = shm::compute_layout(plan.layout);
  ASSERT_TRUE(layout.ok()) << layout.error().message;
  ASSERT_EQ(layout->rings.size(), plan.layout.rings.size());
  for (std::size_t ring = 0; ring < plan.layout.rings.size(); ++ring) {
    EXPECT_EQ(layout->rings[ring].capacity, plan.layout.rings[ring].capacity) << "ring " << ring;
    EXPECT_EQ(layout->rings[ring].dead_letter_ring, plan.layout.rings[ring].dead_letter_ring) << "ring " << ring;
  }
  EXPECT_EQ(layout->leases_per_lane, 16u);
}

TEST_F(BusPlanTest, LayoutOfAnAllDefaultsApplicationComputes) {
  const auto config = load("name: demo\nservices:\n  users: { config: {} }\n");
  ASSERT_TRUE(config.ok()) << config.error().message;
  const Result<shm::Layout> layout = shm::compute_layout(plan_bus(config.value()).value().layout);
  EXPECT_TRUE(layout.ok()) << layout.error().message;
}

TEST_F(BusPlanTest, LayoutComputesForTheLargestMaxInstancesTheConfigurationAccepts) {
  const auto config = load("name: demo\nbus:\n  max-instances: 4000\nservices:\n  users: { config: {} }\n");
  ASSERT_TRUE(config.ok()) << config.error().message;
  const Result<shm::Layout> layout = shm::compute_layout(plan_bus(config.value()).value().layout);
  EXPECT_TRUE(layout.ok()) << layout.error().message;
}

TEST_F(BusPlanTest, ReplanKeepsTheRingsOfKnownTypesWhateverTheirFileOrder) {
  const auto before = load(kShop);
  ASSERT_TRUE(before.ok()) << before.error().message;
  BusPlan plan = plan_bus(before.value()).value();
  const auto after = load(R"(name: shop
bus:
  max-instances: 4
services:
  orders: { config: { queue-capacity: 8192, ack-timeout-ms: 2500, delivery-limit: 7, prefetch: 16 } }
  users: { config: { queue-capacity: 32, ack-timeout-ms: 1500, delivery-limit: 3, prefetch: 4 } }
)");
  ASSERT_TRUE(after.ok()) << after.error().message;
  const Result<void> replanned = replan_types(plan, after.value());
  ASSERT_TRUE(replanned.ok()) << replanned.error().message;
  EXPECT_EQ(plan.type_rings.at("users"), 0);
  EXPECT_EQ(plan.type_rings.at("orders"), 1);
}

TEST_F(BusPlanTest, ReplanGivesNewTypesSpareRingsInFileOrder) {
  const auto before = load(kShop);
  ASSERT_TRUE(before.ok()) << before.error().message;
  BusPlan plan = plan_bus(before.value()).value();
  const auto after = shop_with(service_entries("new", 2));
  ASSERT_TRUE(after.ok()) << after.error().message;
  const Result<void> replanned = replan_types(plan, after.value());
  ASSERT_TRUE(replanned.ok()) << replanned.error().message;
  EXPECT_EQ(plan.type_rings.at("new0"), 2);
  EXPECT_EQ(plan.type_rings.at("new1"), 3);
  EXPECT_EQ(plan.type_rings.at("users"), 0);
}

TEST_F(BusPlanTest, ReplanKeepsTheRingOfATypeThatLeftOutOfReachOfNewTypes) {
  const auto before = load(kShop);
  ASSERT_TRUE(before.ok()) << before.error().message;
  BusPlan plan = plan_bus(before.value()).value();
  const auto after = load(
      "name: shop\nservices:\n  orders: { config: { queue-capacity: 8192, ack-timeout-ms: 2500, delivery-limit: 7 } }\n"
      "  mail: { config: {} }\n");
  ASSERT_TRUE(after.ok()) << after.error().message;
  const Result<void> replanned = replan_types(plan, after.value());
  ASSERT_TRUE(replanned.ok()) << replanned.error().message;
  EXPECT_EQ(plan.type_rings.at("users"), 0) << "what waits in its ring stays for it";
  EXPECT_EQ(plan.type_rings.at("mail"), 2);
}

TEST_F(BusPlanTest, ReplanLeavesTheLayoutAlone) {
  const auto before = load(kShop);
  ASSERT_TRUE(before.ok()) << before.error().message;
  BusPlan plan = plan_bus(before.value()).value();
  const Result<shm::Layout> laid_out = shm::compute_layout(plan.layout);
  ASSERT_TRUE(laid_out.ok()) << laid_out.error().message;
  const auto after = shop_with(service_entries("new", 3));
  ASSERT_TRUE(after.ok()) << after.error().message;
  ASSERT_TRUE(replan_types(plan, after.value()).ok());
  EXPECT_EQ(plan.type_slots, kTypes);
  EXPECT_EQ(plan.instance_slots, kInstances);
  const Result<shm::Layout> relaid = shm::compute_layout(plan.layout);
  ASSERT_TRUE(relaid.ok()) << relaid.error().message;
  EXPECT_EQ(relaid->total_size, laid_out->total_size) << "a running segment is never laid out anew";
}

TEST_F(BusPlanTest, ReplanUsesUpEverySpareRing) {
  const auto before = load(kShop);
  ASSERT_TRUE(before.ok()) << before.error().message;
  BusPlan plan = plan_bus(before.value()).value();
  const auto after = shop_with(service_entries("new", kSpareServiceTypes));
  ASSERT_TRUE(after.ok()) << after.error().message;
  const Result<void> replanned = replan_types(plan, after.value());
  ASSERT_TRUE(replanned.ok()) << replanned.error().message;
  EXPECT_EQ(plan.type_rings.at("new" + std::to_string(kSpareServiceTypes - 1)), kTypes - 1);
}

TEST_F(BusPlanTest, ReplanFailsNamingTheFirstTypeLeftWithoutASpareRing) {
  const auto before = load(kShop);
  ASSERT_TRUE(before.ok()) << before.error().message;
  BusPlan plan = plan_bus(before.value()).value();
  const auto after = shop_with(service_entries("new", kSpareServiceTypes + 1));
  ASSERT_TRUE(after.ok()) << after.error().message;
  const Result<void> replanned = replan_types(plan, after.value());
  ASSERT_FALSE(replanned.ok());
  EXPECT_EQ(replanned.error().code, ErrorCode::config_error);
  const std::string& message = replanned.error().message;
  EXPECT_NE(message.find("'new" + std::to_string(kSpareServiceTypes) + "'"), std::string::npos) << message;
}

TEST_F(BusPlanTest, ReplanRefusesAKnownTypeWhoseQueueCapacityChanged) {
  const auto before = load(kShop);
  ASSERT_TRUE(before.ok()) << before.error().message;
  BusPlan plan = plan_bus(before.value()).value();
  const auto after = load(R"(name: shop
services:
  users: { config: { queue-capacity: 64 } }
  orders: { config: { queue-capacity: 8192 } }
)");
  ASSERT_TRUE(after.ok()) << after.error().message;
  const Result<void> replanned = replan_types(plan, after.value());
  ASSERT_FALSE(replanned.ok()) << "users would keep a 32-slot ring";
  EXPECT_EQ(replanned.error().code, ErrorCode::config_error);
  EXPECT_NE(replanned.error().message.find("'users'"), std::string::npos) << replanned.error().message;
}

TEST_F(BusPlanTest, ReplanRefusesANewTypeNeedingMoreThanTheSpareRingsHold) {
  const auto before = load(kShop);
  ASSERT_TRUE(before.ok()) << before.error().message;
  BusPlan plan = plan_bus(before.value()).value();
  const auto after = shop_with("  big: { config: { queue-capacity: 16384 } }\n");
  ASSERT_TRUE(after.ok()) << after.error().message;
  const Result<void> replanned = replan_types(plan, after.value());
  ASSERT_FALSE(replanned.ok()) << "big would get an 8192-slot ring";
  EXPECT_EQ(replanned.error().code, ErrorCode::config_error);
  EXPECT_NE(replanned.error().message.find("'big'"), std::string::npos) << replanned.error().message;
}

TEST_F(BusPlanTest, InstancesAndTypesBeyondOneSegmentAreAConfigErrorNamingTheLimit) {
  // 60 types and their spares take 136 rings, so 4000 instances do not fit in 4096.
  const auto config = load("name: big\nbus:\n  max-instances: 4000\nservices:\n" + service_entries("type", 60));
  ASSERT_TRUE(config.ok()) << config.error().message;
  const Result<BusPlan> plan = plan_bus(config.value());
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.error().code, ErrorCode::config_error);
  EXPECT_NE(plan.error().message.find("lower bus.max-instances to 3959"), std::string::npos) << plan.error().message;
}

TEST_F(BusPlanTest, ThePlanAtTheLimitNamedComputes) {
  const auto config = load("name: big\nbus:\n  max-instances: 3959\nservices:\n" + service_entries("type", 60));
  ASSERT_TRUE(config.ok()) << config.error().message;
  const Result<BusPlan> plan = plan_bus(config.value());
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  const Result<shm::Layout> layout = shm::compute_layout(plan.value().layout);
  EXPECT_TRUE(layout.ok()) << layout.error().message;
}

TEST_F(BusPlanTest, ReplanRefusesAKnownTypeWhoseAckTimeoutChanged) {
  const auto before = load(kShop);
  ASSERT_TRUE(before.ok()) << before.error().message;
  BusPlan plan = plan_bus(before.value()).value();
  const BusPlan running = plan;
  const auto after = load(R"(name: shop
services:
  users: { config: { queue-capacity: 32, ack-timeout-ms: 900 } }
  orders: { config: { queue-capacity: 8192 } }
)");
  ASSERT_TRUE(after.ok()) << after.error().message;
  const Result<void> replanned = replan_types(plan, after.value());
  ASSERT_FALSE(replanned.ok());
  EXPECT_NE(replanned.error().message.find("ack-timeout-ms"), std::string::npos) << replanned.error().message;
  EXPECT_EQ(plan.type_rings, running.type_rings) << "a refused reload leaves the running plan as it was";
}

TEST_F(BusPlanTest, ReplanRefusesANewTypeWhoseDeliveryLimitTheSpareRingsDoNotHave) {
  const auto before = load(kShop);
  ASSERT_TRUE(before.ok()) << before.error().message;
  BusPlan plan = plan_bus(before.value()).value();
  const auto after = shop_with("  picky: { config: { delivery-limit: 2 } }\n");
  ASSERT_TRUE(after.ok()) << after.error().message;
  const Result<void> replanned = replan_types(plan, after.value());
  ASSERT_FALSE(replanned.ok());
  EXPECT_NE(replanned.error().message.find("'picky'"), std::string::npos) << replanned.error().message;
  EXPECT_NE(replanned.error().message.find("delivery-limit"), std::string::npos) << replanned.error().message;
  EXPECT_FALSE(plan.type_rings.contains("picky"));
}

}  // namespace
}  // namespace exobus
