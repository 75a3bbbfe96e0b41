// How the daemon turns a configuration into the bus's memory: a type index and a tenant
// shape per service type, a link per pair of types that talk (in both directions), spare
// slots for reloads, and how a reload adds types and links without moving any.
#include "exobus/bus_plan.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <stdexcept>
#include <string>

#include "exobus/shm/bus_memory.hpp"

#include "../config/config_files.hpp"

namespace exobus {
namespace {

// T = 2 configured + 8 spare types = 10. orders sends user.create to users, which
// replies: links orders->users and users->orders.
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
      receives: [user.create]
      sends: [user.created]
      queue-capacity: 32
      ack-timeout-ms: 1500
      delivery-limit: 3
      prefetch: 4
  orders:
    config:
      sends: [user.create]
      receives: [user.created]
      queue-capacity: 8192
      ack-timeout-ms: 2500
      delivery-limit: 7
      prefetch: 16
)";
constexpr std::uint32_t kTypes = 2 + kSpareServiceTypes;
constexpr std::uint32_t kInstances = 4;

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


// The plan of a configuration both tests and plan_bus() must accept (a test stops at the
// first that does not: gtest reports the exception).
BusPlan planned(const Result<ApplicationConfig>& config) {
  if (!config) throw std::runtime_error(config.error().message);
  Result<BusPlan> plan = plan_bus(config.value());
  if (!plan) throw std::runtime_error(plan.error().message);
  return std::move(plan).value();
}

TEST_F(BusPlanTest, TypesTakeIndicesInFileOrderWithSpareSlotsForReloads) {
  const BusPlan plan = planned(load(kShop));
  EXPECT_EQ(plan.types.size(), 2u);
  EXPECT_EQ(plan.types.at("users"), 0);
  EXPECT_EQ(plan.types.at("orders"), 1);
  EXPECT_EQ(plan.memory.directory.type_slots, kTypes);
  EXPECT_EQ(plan.memory.directory.link_slots, kTypes * kTypes);
  EXPECT_EQ(plan.memory.region_slots, 2 + kTypes + 2 * kTypes * kTypes) << "registry, directory, tenants, halves";
}

TEST_F(BusPlanTest, EachTypeShapeCarriesItsSettings) {
  const BusPlan plan = planned(load(kShop));
  const shm::TenantShape& users = plan.type(0)->shape;
  EXPECT_EQ(users.instances, kInstances);
  EXPECT_EQ(users.lanes_per_instance, kLanesPerInstance);
  EXPECT_EQ(users.leases_per_lane, 4u) << "the type's prefetch";
  EXPECT_EQ(users.lease_ms, 1500u);
  EXPECT_EQ(users.delivery_limit, 3u);
  EXPECT_EQ(users.dead_letter_capacity, kDeadLetterCapacity);
  const shm::TenantShape& orders = plan.type(1)->shape;
  EXPECT_EQ(orders.leases_per_lane, 16u);
  EXPECT_EQ(orders.lease_ms, 2500u);
  EXPECT_EQ(orders.delivery_limit, 7u);
}

TEST_F(BusPlanTest, TheRetryRingHoldsTheQueueOrEveryLeaseOfTheTypeReleasedAtOnce) {
  const BusPlan plan = planned(load(kShop));
  EXPECT_EQ(plan.type(0)->shape.retry_capacity, 32u) << "users: max(32 queued, 2 x 4 instances x 4 leases)";
  EXPECT_EQ(plan.type(1)->shape.retry_capacity, 8192u) << "orders: max(8192 queued, 2 x 4 x 16)";
  const BusPlan small = planned(load(
      "name: s\nbus: { max-instances: 20 }\nservices:\n  a: { config: { queue-capacity: 16, prefetch: 5 } }\n"));
  EXPECT_EQ(small.type(0)->shape.retry_capacity, std::bit_ceil(2u * 20 * 5)) << "rounded up to a power of two";
}

TEST_F(BusPlanTest, APairOfTypesThatTalkGetsALinkEachWay) {
  const BusPlan plan = planned(load(kShop));
  EXPECT_EQ(plan.links.size(), 2u);
  EXPECT_TRUE(plan.link_between(1, 0)) << "orders -> users: the commands";
  EXPECT_TRUE(plan.link_between(0, 1)) << "users -> orders: the replies (and users' own sends)";
  EXPECT_FALSE(plan.link_between(0, 0));
  EXPECT_EQ(plan.links_of(0).size(), 2u);
}

TEST_F(BusPlanTest, TypesThatNeverTalkGetNoLink) {
  const BusPlan plan = planned(load("name: quiet\nservices:\n  a: { config: {} }\n  b: { config: {} }\n"));
  EXPECT_TRUE(plan.links.empty());
  EXPECT_TRUE(plan.memory.links.empty());
}

TEST_F(BusPlanTest, ALinkHasTheReceiversQueueCapacityAndAReplyChannelPerReceiverInstance) {
  const BusPlan plan = planned(load(kShop));
  const std::uint32_t to_users = *plan.link_between(1, 0);
  for (const shm::BusShape::LinkEntry& link : plan.memory.links) {
    const bool is_to_users = link.index == to_users;
    EXPECT_EQ(link.shape.channel_capacity, is_to_users ? 32u : 8192u) << "link " << link.index;
    EXPECT_EQ(link.shape.reply_channels, kInstances) << "link " << link.index;
    EXPECT_EQ(link.shape.reply_capacity, 64u) << "link " << link.index;
  }
}

TEST_F(BusPlanTest, ATypesInstancesAndTheReplyChannelsTowardsItComeFromItsOwnMaxInstances) {
  std::string capped = kShop;
  capped.replace(capped.find("      prefetch: 4\n"), 18, "      prefetch: 4\n      max-instances: 2\n");
  const BusPlan plan = planned(load(capped));
  EXPECT_EQ(plan.type(0)->shape.instances, 2u) << "users: its own max-instances";
  EXPECT_EQ(plan.type(1)->shape.instances, kInstances) << "orders: the bus's";
  EXPECT_EQ(plan.memory.instance_slots, kInstances) << "the bus's slots stay the bus's";
  for (const shm::BusShape::LinkEntry& link : plan.memory.links) {
    const bool towards_users = link.shape.receiver == 0;
    EXPECT_EQ(link.shape.reply_channels, towards_users ? 2u : kInstances) << "a reply channel per receiver instance";
  }
  const Result<std::uint64_t> capped_bytes = shm::BusMemory::total_bytes(plan.memory);
  const Result<std::uint64_t> full_bytes = shm::BusMemory::total_bytes(planned(load(kShop)).memory);
  ASSERT_TRUE(capped_bytes.ok() && full_bytes.ok());
  EXPECT_LT(capped_bytes.value(), full_bytes.value()) << "a type's memory is sized by its quota";
}

TEST_F(BusPlanTest, EveryLinkHasTheSizeClassesInOrder) {
  const BusPlan plan = planned(load(kShop));
  ASSERT_EQ(plan.memory.directory.size_classes.size(), 2u);
  for (const shm::BusShape::LinkEntry& link : plan.memory.links) {
    ASSERT_EQ(link.shape.size_classes.size(), 2u);
    EXPECT_EQ(link.shape.size_classes[0].chunk_size, 512u);
    EXPECT_EQ(link.shape.size_classes[0].chunk_count, 10u);
    EXPECT_EQ(link.shape.size_classes[1].chunk_size, 8192u);
    EXPECT_EQ(link.shape.size_classes[1].chunk_count, 2u);
  }
}

TEST_F(BusPlanTest, InstanceSlotsAreMaxInstances) {
  const BusPlan plan = planned(load(kShop));
  EXPECT_EQ(plan.memory.instance_slots, kInstances);
  EXPECT_EQ(plan.memory.directory.lanes_per_instance, kLanesPerInstance);
}

TEST_F(BusPlanTest, EveryPlannedShapeLaysOut) {
  const BusPlan plan = planned(load(kShop));
  for (const shm::BusShape::Type& type : plan.memory.types) {
    EXPECT_TRUE(shm::compute_tenant_layout(type.shape).ok()) << type.name;
  }
  for (const shm::BusShape::LinkEntry& link : plan.memory.links) {
    EXPECT_TRUE(shm::compute_link_layout(link.shape).ok()) << "link " << link.index;
  }
  EXPECT_TRUE(shm::BusMemory::total_bytes(plan.memory).ok());
}

TEST_F(BusPlanTest, TheLargestMaxInstancesTheConfigurationAcceptsLaysOut) {
  const BusPlan plan = planned(load("name: demo\nbus:\n  max-instances: 4000\nservices:\n"
                                    "  a: { config: { sends: [x] } }\n  b: { config: { receives: [x] } }\n"));
  for (const shm::BusShape::LinkEntry& link : plan.memory.links) {
    const Result<shm::LinkLayout> layout = shm::compute_link_layout(link.shape);
    EXPECT_TRUE(layout.ok()) << layout.error().message;
  }
}

TEST_F(BusPlanTest, TheMemoryOfAPlanGivesThePlanBack) {
  const BusPlan plan = planned(load(kShop));
  Result<std::unique_ptr<shm::BusMemory>> memory = shm::BusMemory::create("exobus-test.plan", plan.memory);
  ASSERT_TRUE(memory.ok()) << memory.error().message;
  const BusPlan again = plan_of_memory(memory.value()->directory(), plan.memory.instance_slots);
  EXPECT_EQ(again.types, plan.types);
  EXPECT_EQ(again.links, plan.links);
  EXPECT_EQ(again.memory.directory.type_slots, plan.memory.directory.type_slots);
  EXPECT_EQ(again.memory.directory.link_slots, plan.memory.directory.link_slots);
  ASSERT_EQ(again.memory.types.size(), plan.memory.types.size());
  EXPECT_EQ(again.type(0)->shape.retry_capacity, plan.type(0)->shape.retry_capacity);
}

TEST_F(BusPlanTest, ReplanKeepsKnownIndicesWhateverTheFileOrderAndAddsNothing) {
  BusPlan plan = planned(load(kShop));
  const auto links_before = plan.links;
  const auto after = load(R"(name: shop
bus:
  max-instances: 4
  reply-inbox-capacity: 64
  size-classes:
    - { size: 512, count: 10 }
    - { size: 8192, count: 2 }
services:
  orders: { config: { sends: [user.create], receives: [user.created], queue-capacity: 8192, ack-timeout-ms: 2500, delivery-limit: 7, prefetch: 16 } }
  users: { config: { receives: [user.create], sends: [user.created], queue-capacity: 32, ack-timeout-ms: 1500, delivery-limit: 3, prefetch: 4 } }
)");
  ASSERT_TRUE(after.ok()) << after.error().message;
  const Result<PlanAdditions> added = replan(plan, after.value());
  ASSERT_TRUE(added.ok()) << added.error().message;
  EXPECT_TRUE(added.value().types.empty());
  EXPECT_TRUE(added.value().links.empty());
  EXPECT_EQ(plan.types.at("users"), 0);
  EXPECT_EQ(plan.types.at("orders"), 1);
  EXPECT_EQ(plan.links, links_before);
}

TEST_F(BusPlanTest, ReplanGivesNewTypesFreeIndicesInFileOrderAndListsThem) {
  BusPlan plan = planned(load(kShop));
  const auto after = shop_with(service_entries("new", 2));
  ASSERT_TRUE(after.ok()) << after.error().message;
  const Result<PlanAdditions> added = replan(plan, after.value());
  ASSERT_TRUE(added.ok()) << added.error().message;
  EXPECT_EQ(plan.types.at("new0"), 2);
  EXPECT_EQ(plan.types.at("new1"), 3);
  ASSERT_EQ(added.value().types.size(), 2u);
  EXPECT_EQ(added.value().types[0].name, "new0");
  EXPECT_TRUE(added.value().links.empty()) << "the new types talk to nobody";
}

TEST_F(BusPlanTest, ReplanAddsTheLinksOfANewRouteBetweenKnownTypes) {
  BusPlan plan = planned(load(kShop));
  const auto after = load(std::string(kShop) + "  audit: { config: { receives: [user.create] } }\n");
  ASSERT_TRUE(after.ok()) << after.error().message;
  const Result<PlanAdditions> added = replan(plan, after.value());
  ASSERT_TRUE(added.ok()) << added.error().message;
  EXPECT_EQ(added.value().links.size(), 2u) << "orders -> audit and audit -> orders";
  EXPECT_TRUE(plan.link_between(1, plan.types.at("audit")));
  for (const shm::BusShape::LinkEntry& link : added.value().links) {
    EXPECT_NE(link.index, *plan.link_between(1, 0)) << "a new link takes a free slot";
    EXPECT_NE(link.index, *plan.link_between(0, 1)) << "a new link takes a free slot";
  }
}

TEST_F(BusPlanTest, ReplanKeepsTheIndexOfATypeThatLeftOutOfReachOfNewTypes) {
  BusPlan plan = planned(load(kShop));
  const auto after = load(
      "name: shop\nbus:\n  max-instances: 4\n  reply-inbox-capacity: 64\n  size-classes:\n"
      "    - { size: 512, count: 10 }\n    - { size: 8192, count: 2 }\nservices:\n"
      "  orders: { config: { queue-capacity: 8192, ack-timeout-ms: 2500, delivery-limit: 7, prefetch: 16 } }\n"
      "  mail: { config: {} }\n");
  ASSERT_TRUE(after.ok()) << after.error().message;
  ASSERT_TRUE(replan(plan, after.value()).ok());
  EXPECT_EQ(plan.types.at("users"), 0) << "what waits in its memory stays for it";
  EXPECT_EQ(plan.types.at("mail"), 2);
}

TEST_F(BusPlanTest, ReplanUsesUpEverySpareSlotThenFailsNamingTheFirstTypeLeftWithout) {
  BusPlan plan = planned(load(kShop));
  const auto fits = shop_with(service_entries("new", kSpareServiceTypes));
  ASSERT_TRUE(fits.ok()) << fits.error().message;
  BusPlan filled = plan;
  ASSERT_TRUE(replan(filled, fits.value()).ok());
  EXPECT_EQ(filled.types.at("new" + std::to_string(kSpareServiceTypes - 1)), kTypes - 1);

  const auto too_many = shop_with(service_entries("new", kSpareServiceTypes + 1));
  ASSERT_TRUE(too_many.ok()) << too_many.error().message;
  const Result<PlanAdditions> refused = replan(plan, too_many.value());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::config_error);
  EXPECT_NE(refused.error().message.find("'new" + std::to_string(kSpareServiceTypes) + "'"), std::string::npos)
      << refused.error().message;
}

TEST_F(BusPlanTest, ReplanRefusesAKnownTypeWhoseQueueCapacityChanged) {
  BusPlan plan = planned(load(kShop));
  std::string changed = kShop;
  changed.replace(changed.find("queue-capacity: 32"), 18, "queue-capacity: 64");
  const auto after = load(changed);
  ASSERT_TRUE(after.ok()) << after.error().message;
  const Result<PlanAdditions> refused = replan(plan, after.value());
  ASSERT_FALSE(refused.ok()) << "users' channels hold 32";
  EXPECT_EQ(refused.error().code, ErrorCode::config_error);
  EXPECT_NE(refused.error().message.find("'users'"), std::string::npos) << refused.error().message;
}

TEST_F(BusPlanTest, ReplanRefusesAKnownTypeWhoseAckTimeoutChangedAndLeavesThePlanAsItWas) {
  BusPlan plan = planned(load(kShop));
  const BusPlan running = plan;
  std::string changed = kShop;
  changed.replace(changed.find("ack-timeout-ms: 1500"), 20, "ack-timeout-ms: 900");
  const auto after = load(changed + "  newcomer: { config: {} }\n");
  ASSERT_TRUE(after.ok()) << after.error().message;
  const Result<PlanAdditions> refused = replan(plan, after.value());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("ack-timeout-ms"), std::string::npos) << refused.error().message;
  EXPECT_EQ(plan.types, running.types) << "a refused reload leaves the running plan as it was";
  EXPECT_FALSE(plan.types.contains("newcomer"));
}

TEST_F(BusPlanTest, ReplanRefusesAPrefetchAboveTheOneLaidOutButTakesALowerOne) {
  std::string lower = kShop;
  lower.replace(lower.find("prefetch: 16"), 12, "prefetch: 8");
  BusPlan plan = planned(load(kShop));
  const auto lowered = load(lower);
  ASSERT_TRUE(lowered.ok());
  EXPECT_TRUE(replan(plan, lowered.value()).ok());

  std::string higher = kShop;
  higher.replace(higher.find("prefetch: 16"), 12, "prefetch: 32");
  const auto raised = load(higher);
  ASSERT_TRUE(raised.ok());
  const Result<PlanAdditions> refused = replan(plan, raised.value());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("prefetch"), std::string::npos) << refused.error().message;
}

TEST_F(BusPlanTest, ReplanRefusesChangedSizeClassesAndMaxInstances) {
  BusPlan plan = planned(load(kShop));
  std::string classes = kShop;
  classes.replace(classes.find("count: 10"), 9, "count: 11");
  const auto other_classes = load(classes);
  ASSERT_TRUE(other_classes.ok());
  const Result<PlanAdditions> refused_classes = replan(plan, other_classes.value());
  ASSERT_FALSE(refused_classes.ok());
  EXPECT_NE(refused_classes.error().message.find("size-classes"), std::string::npos);

  std::string instances = kShop;
  instances.replace(instances.find("max-instances: 4"), 16, "max-instances: 5");
  const auto more_instances = load(instances);
  ASSERT_TRUE(more_instances.ok());
  const Result<PlanAdditions> refused_instances = replan(plan, more_instances.value());
  ASSERT_FALSE(refused_instances.ok());
  EXPECT_NE(refused_instances.error().message.find("max-instances"), std::string::npos);
}

TEST_F(BusPlanTest, ReplanRefusesAKnownTypeWhoseMaxInstancesChanged) {
  BusPlan plan = planned(load(kShop));
  std::string changed = kShop;
  changed.replace(changed.find("      prefetch: 4\n"), 18, "      prefetch: 4\n      max-instances: 3\n");
  const auto after = load(changed);
  ASSERT_TRUE(after.ok()) << after.error().message;
  const Result<PlanAdditions> refused = replan(plan, after.value());
  ASSERT_FALSE(refused.ok()) << "users' memory holds 4 instances";
  EXPECT_EQ(refused.error().code, ErrorCode::config_error);
  EXPECT_NE(refused.error().message.find("'users' has max-instances 4 (asks for 3)"), std::string::npos)
      << refused.error().message;
}

TEST_F(BusPlanTest, ATypeTalkingToMoreTypesThanOneRegistrationCanGrantIsAConfigError) {
  // hub sends x to 70 receiving types: 140 links, 2 + 280 objects to grant hub.
  std::string many = "name: hub\nservices:\n  hub: { config: { sends: [x] } }\n" +
                     service_entries("r", 70, "{ receives: [x] }");
  const auto config = load(many);
  ASSERT_TRUE(config.ok()) << config.error().message;
  const Result<BusPlan> plan = plan_bus(config.value());
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.error().code, ErrorCode::config_error);
  EXPECT_NE(plan.error().message.find("'hub'"), std::string::npos) << plan.error().message;
}

}  // namespace
}  // namespace exobus
