// The test bus: a service under test talks to the other service types of its application
// through it, with the application's own routing, translation and schema rules, and no
// daemon.
#include "exobus/test_bus.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "../config/config_files.hpp"

namespace exobus {
namespace {

using namespace std::chrono_literals;

constexpr const char* kShop = R"(name: shop
bus:
  max-instances: 8
  size-classes:
    - { size: 256, count: 64 }
    - { size: 4096, count: 8 }
services:
  web:
    config:
      sends: [user.create, audit.note]
      receives: [user.create.ok, user.create.taken]
  users:
    config:
      receives: [create, mongo.saved]
      sends: [create.ok, user.create.taken, user.created, mongo.save]
      message-translation:
        - { public: user.create, internal: create }
        - { public: user.create.ok, internal: create.ok }
      schemas:
        create: { type: object, required: [name], properties: { name: { type: string } } }
  mongo:
    config:
      receives: [mongo.save]
      sends: [mongo.saved]
  audit:
    config:
      receives: [user.created, audit.note]
)";

class TestBusTest : public testing::ConfigFiles {
 protected:
  void SetUp() override {
    ConfigFiles::SetUp();
    Result<std::unique_ptr<TestBus>> created = TestBus::create(write("application.yml", kShop));
    ASSERT_TRUE(created.ok()) << created.error().message;
    bus = std::move(created).value();
  }
  void TearDown() override {
    users.reset();
    bus.reset();
    ConfigFiles::TearDown();
  }

  // users, as the application's code would write it: its own names, a reply, a fan-out.
  void start_users() {
    Result<std::unique_ptr<Service>> connected = bus->connect("users");
    ASSERT_TRUE(connected.ok()) << connected.error().message;
    users = std::move(connected).value();
    users->on("create", [](Delivery& delivery) {
      EXPECT_TRUE(delivery.send("user.created", delivery.message().payload).ok());
      EXPECT_TRUE(delivery.reply("create.ok", R"({"id":7})").ok());
    });
    ASSERT_TRUE(users->start().ok());
  }

  std::unique_ptr<TestBus> bus;
  std::unique_ptr<Service> users;
};

TEST_F(TestBusTest, ACommandSentAsAPlayedTypeReachesTheServiceUnderTestAndItsReplyComesBack) {
  start_users();

  Result<Reply> reply = bus->request("web", "user.create", R"({"name":"Jean-Luc"})");

  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_EQ(reply.value().outcome, "user.create.ok") << "the requester's name for users' create.ok";
  EXPECT_EQ(reply.value().payload, R"({"id":7})");
  EXPECT_EQ(reply.value().message.sender, "users");
}

TEST_F(TestBusTest, WhatTheServiceUnderTestSendsIsRecordedAsItsReceiversSeeIt) {
  start_users();
  const Uuid request = Uuid::generate();

  ASSERT_TRUE(bus->request("web", "user.create", R"({"name":"Jean-Luc"})", 1s, SendOptions().request_id(request)).ok());
  Result<ObservedMessage> created = bus->wait_for("user.created");

  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_EQ(created.value().receiver, "audit");
  EXPECT_EQ(created.value().message.payload, R"({"name":"Jean-Luc"})");
  EXPECT_EQ(created.value().message.sender, "users");
  EXPECT_EQ(created.value().message.request_id, request) << "sent through the delivery: the same request";
  EXPECT_FALSE(bus->wait_for("user.created", 50ms).ok()) << "one message, returned once";
}

TEST_F(TestBusTest, APlayedTypeAnswersWithTheRepliesTheTestScripts) {
  Result<std::unique_ptr<Service>> connected = bus->connect("users");
  ASSERT_TRUE(connected.ok());
  users = std::move(connected).value();
  bus->on("mongo", "mongo.save", [](Delivery& delivery) { EXPECT_TRUE(delivery.reply("mongo.saved", "{}").ok()); });

  Result<Reply> saved = users->request("mongo.save", R"({"doc":1})", 1s).get();

  ASSERT_TRUE(saved.ok()) << saved.error().message;
  EXPECT_EQ(saved.value().outcome, "mongo.saved");
  EXPECT_EQ(saved.value().message.sender, "mongo");
  EXPECT_EQ(bus->wait_for("mongo.save").value().message.payload, R"({"doc":1})");
}

TEST_F(TestBusTest, SchemasApplyToWhatPlayedTypesSend) {
  start_users();

  const Result<void> refused = bus->send("web", "user.create", R"({"name":7})");

  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::schema_violation) << refused.error().message;
}

TEST_F(TestBusTest, APlayedTypeSendsOnlyWhatItDeclares) {
  const Result<void> refused = bus->send("audit", "user.create", "{}");

  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::not_declared);
}

TEST_F(TestBusTest, ATypeAlreadyPlayedCannotBeConnectedUnderTest) {
  ASSERT_TRUE(bus->send("web", "audit.note", "{}").ok());

  const Result<std::unique_ptr<Service>> late = bus->connect("audit");

  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, ErrorCode::config_error);
  EXPECT_NE(late.error().message.find("already played"), std::string::npos) << late.error().message;
}

TEST_F(TestBusTest, ResetForgetsWhatWasReceived) {
  ASSERT_TRUE(bus->send("web", "audit.note", R"({"n":1})").ok());
  ASSERT_TRUE(bus->wait_for("audit.note").ok());

  bus->reset();

  EXPECT_TRUE(bus->received().empty());
  ASSERT_TRUE(bus->send("web", "audit.note", R"({"n":2})").ok());
  EXPECT_EQ(bus->wait_for("audit.note").value().message.payload, R"({"n":2})") << "the count starts again";
}

TEST_F(TestBusTest, ADeliveryHeldPastItsHandlerIsSettledFromAnotherThread) {
  Result<std::unique_ptr<Service>> connected = bus->connect("users");
  ASSERT_TRUE(connected.ok());
  users = std::move(connected).value();
  std::mutex mutex;
  std::optional<Delivery> held;
  std::atomic<int> handled{0};
  users->on("create", [&](Delivery& delivery) {
    std::lock_guard lock(mutex);
    held.emplace(std::move(delivery));
    ++handled;
  });
  ASSERT_TRUE(users->start().ok());
  std::atomic<bool> replied{false};
  ASSERT_TRUE(bus->send(
                     "web", "user.create", R"({"name":"x"})",
                     [&](const Reply& reply) {
                       replied = reply.outcome == "user.create.ok";
                       return ReplyControl::done;
                     },
                     2s)
                  .ok());
  while (handled.load() == 0) std::this_thread::yield();

  std::thread later([&] {
    std::lock_guard lock(mutex);
    EXPECT_TRUE(held->reply("create.ok", "{}").ok());
    EXPECT_TRUE(held->ack().ok());
  });
  later.join();

  while (!replied.load()) std::this_thread::yield();
  EXPECT_EQ(handled.load(), 1) << "acked from the other thread: never redelivered";
}

TEST_F(TestBusTest, AnUnknownServiceTypeIsAConfigError) {
  const Result<std::unique_ptr<Service>> stranger = bus->connect("stranger");
  ASSERT_FALSE(stranger.ok());
  EXPECT_EQ(stranger.error().code, ErrorCode::config_error);
}

TEST(TestBusCreate, AnApplicationThatDoesNotLoadIsItsConfigError) {
  const Result<std::unique_ptr<TestBus>> bus = TestBus::create("/nonexistent/application.yml");
  ASSERT_FALSE(bus.ok());
  EXPECT_EQ(bus.error().code, ErrorCode::config_error);
}

}  // namespace
}  // namespace exobus
