// Versions between real processes: a sender sets a message's version (or gets its name's
// default), the receiver reads it exactly, schemas apply per version, handlers are chosen
// per version, and a version the sender's configuration does not list is refused.
#include <gtest/gtest.h>

#include "bus_fixture.hpp"
#include "exobus/message_version.hpp"

namespace exobus::integration {
namespace {

constexpr const char* kVersioned = R"(
  web:
    config:
      sends: [user.create]
      versions:
        user.create: { known: [1, 1.2, 2], default: 1.2 }
  users:
    config:
      receives: [user.create]
      versions:
        user.create: [1, 1.2, 2]
      schemas:
        user.create:
          by-version:
            1: { type: object, required: [name] }
            2: { type: object, required: [email] }
)";

TEST(Versions, AVersionSetBySendArrivesExactly) {
  Bus bus(kVersioned);
  Inbox got;
  auto users = bus.connect("users");
  auto web = bus.connect("web");
  ASSERT_TRUE(users && web);
  users->on("user.create", [&](Delivery& d) { got.add(d.message()); });
  ASSERT_TRUE(users->start().ok());

  ASSERT_TRUE(web->send("user.create", R"({"email":"a@b"})", SendOptions().version(2)).ok());
  ASSERT_TRUE(web->send("user.create", R"({"name":"x"})", SendOptions().version(1.2)).ok());

  ASSERT_TRUE(eventually([&] { return got.size() == 2; }));
  EXPECT_EQ(got.messages()[0].version, 2.0);
  EXPECT_EQ(got.messages()[1].version, 1.2) << "the binary64 the sender set";
  EXPECT_EQ(version_text(got.messages()[1].version), "1.2") << "1.2 stays 1.2";
}

TEST(Versions, ASendThatNamesNoVersionCarriesTheNamesDefault) {
  Bus bus(kVersioned);
  Inbox got;
  auto users = bus.connect("users");
  auto web = bus.connect("web");
  ASSERT_TRUE(users && web);
  users->on("user.create", [&](Delivery& d) { got.add(d.message()); });
  ASSERT_TRUE(users->start().ok());

  ASSERT_TRUE(web->send("user.create", "{}").ok());

  ASSERT_TRUE(eventually([&] { return got.size() == 1; }));
  EXPECT_EQ(got.messages()[0].version, 1.2);
}

TEST(Versions, APayloadIsCheckedAgainstTheSchemaOfItsVersion) {
  Bus bus(kVersioned);
  auto web = bus.connect("web");
  ASSERT_TRUE(web);

  // Version 1 needs a name, version 2 an email, and 1.2 has no schema of its own.
  const Result<void> v1 = web->send("user.create", R"({"email":"a@b"})", SendOptions().version(1));
  const Result<void> v2 = web->send("user.create", R"({"name":"x"})", SendOptions().version(2));
  const Result<void> v12 = web->send("user.create", R"({"anything":true})", SendOptions().version(1.2));

  ASSERT_FALSE(v1.ok());
  EXPECT_EQ(v1.error().code, ErrorCode::schema_violation) << v1.error().message;
  ASSERT_FALSE(v2.ok());
  EXPECT_EQ(v2.error().code, ErrorCode::schema_violation) << v2.error().message;
  EXPECT_TRUE(v12.ok()) << v12.error().message;
  EXPECT_TRUE(web->send("user.create", R"({"name":"x"})", SendOptions().version(1)).ok());
}

TEST(Versions, AVersionTheSendersConfigurationDoesNotListIsUnknownVersion) {
  Bus bus(kVersioned);
  auto web = bus.connect("web");
  ASSERT_TRUE(web);

  const Result<void> sent = web->send("user.create", "{}", SendOptions().version(3));

  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.error().code, ErrorCode::unknown_version);
  EXPECT_NE(sent.error().message.find("known: 1, 1.2, 2"), std::string::npos) << sent.error().message;
  const Result<void> invalid = web->send("user.create", "{}", SendOptions().version(-1));
  ASSERT_FALSE(invalid.ok());
  EXPECT_EQ(invalid.error().code, ErrorCode::invalid_version);
}

TEST(Versions, AHandlerForAVersionTakesItAndTheOtherHandlerTheRest) {
  Bus bus(kVersioned);
  Inbox v2, others;
  auto users = bus.connect("users");
  auto web = bus.connect("web");
  ASSERT_TRUE(users && web);
  users->on("user.create", 2, [&](Delivery& d) { v2.add(d.message()); });
  users->on("user.create", [&](Delivery& d) { others.add(d.message()); });
  ASSERT_TRUE(users->start().ok());

  ASSERT_TRUE(web->send("user.create", R"({"email":"a@b"})", SendOptions().version(2)).ok());
  ASSERT_TRUE(web->send("user.create", R"({"name":"x"})", SendOptions().version(1)).ok());
  ASSERT_TRUE(web->send("user.create", "{}").ok());

  ASSERT_TRUE(eventually([&] { return v2.size() == 1 && others.size() == 2; }));
  EXPECT_EQ(v2.messages()[0].version, 2.0);
  EXPECT_EQ(others.messages()[0].version, 1.0);
  EXPECT_EQ(others.messages()[1].version, 1.2);
}

TEST(Versions, AVersionNoHandlerTakesIsDeadLettered) {
  Bus bus(kVersioned);
  Inbox v1;
  auto users = bus.connect("users");
  auto web = bus.connect("web");
  ASSERT_TRUE(users && web);
  users->on("user.create", 1, [&](Delivery& d) { v1.add(d.message()); });
  ASSERT_TRUE(users->start().ok());

  ASSERT_TRUE(web->send("user.create", R"({"email":"a@b"})", SendOptions().version(2)).ok());
  ASSERT_TRUE(web->send("user.create", R"({"name":"x"})", SendOptions().version(1)).ok());

  ASSERT_TRUE(eventually([&] { return v1.size() == 1; }));
  EXPECT_TRUE(eventually([&] { return bus.type_status("users", "dead_lettered") == 1; }));
}

}  // namespace
}  // namespace exobus::integration
