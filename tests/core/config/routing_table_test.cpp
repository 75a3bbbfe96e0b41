#include "exobus/routing_table.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace exobus {
namespace {

ServiceTypeConfig type(std::string name, std::vector<std::string> sends, std::vector<std::string> receives,
                       std::vector<MessageTranslation> translations = {}) {
  ServiceTypeConfig config;
  config.name = std::move(name);
  config.config_file = config.name + "/config.yml";
  config.sends = std::move(sends);
  config.receives = std::move(receives);
  config.translations = std::move(translations);
  return config;
}

// web=0, users=1, audit=2, mailer=3, store=4 (translated)
std::vector<ServiceTypeConfig> demo_types() {
  return {type("web", {"user.create"}, {"user.create.ok"}),
          type("users", {"user.create.ok", "user.created"}, {"user.create"}), type("audit", {}, {"user.created"}),
          type("mailer", {}, {"user.created"}),
          type("store", {"saved"}, {"save"}, {{"user.save", "save"}, {"user.saved", "saved"}})};
}

TEST(RoutingTable, MessageGoesToItsOnlyReceiver) {
  const RoutingTable routing(demo_types());
  const auto receivers = routing.receivers("user.create");
  ASSERT_EQ(receivers.size(), 1u);
  EXPECT_EQ(receivers[0], 1u);
}

TEST(RoutingTable, MessageFansOutToEveryReceivingTypeInIndexOrder) {
  const RoutingTable routing(demo_types());
  const auto receivers = routing.receivers("user.created");
  ASSERT_EQ(receivers.size(), 2u);
  EXPECT_EQ(receivers[0], 2u);
  EXPECT_EQ(receivers[1], 3u);
}

TEST(RoutingTable, NameNobodyReceivesHasNoReceivers) {
  const RoutingTable routing(demo_types());
  EXPECT_TRUE(routing.receivers("user.delete").empty());
}

TEST(RoutingTable, NamesAreMatchedByteForByte) {
  const RoutingTable routing(demo_types());
  EXPECT_TRUE(routing.receivers("User.Create").empty());
  EXPECT_TRUE(routing.receivers("user.create ").empty());
}

TEST(RoutingTable, TranslatedReceiverIsRoutedByPublicName) {
  const RoutingTable routing(demo_types());
  ASSERT_EQ(routing.receivers("user.save").size(), 1u);
  EXPECT_EQ(routing.receivers("user.save")[0], 4u);
  EXPECT_TRUE(routing.receivers("save").empty());
}

TEST(RoutingTable, TranslationWorksBothWays) {
  const RoutingTable routing(demo_types());
  EXPECT_EQ(routing.to_public(4, "save"), "user.save");
  EXPECT_EQ(routing.to_internal(4, "user.save"), "save");
  EXPECT_EQ(routing.to_public(4, "saved"), "user.saved");
}

TEST(RoutingTable, UntranslatedNamesPassThrough) {
  const RoutingTable routing(demo_types());
  EXPECT_EQ(routing.to_public(0, "user.create"), "user.create");
  EXPECT_EQ(routing.to_internal(4, "other"), "other");
}

TEST(RoutingTable, TypeMaySendOnlyWhatItDeclares) {
  const RoutingTable routing(demo_types());
  EXPECT_TRUE(routing.may_send(0, "user.create"));
  EXPECT_FALSE(routing.may_send(0, "user.created"));
  EXPECT_TRUE(routing.may_send(4, "user.saved"));
  EXPECT_FALSE(routing.may_send(4, "saved"));
  EXPECT_FALSE(routing.may_send(99, "user.create"));
}

TEST(RoutingTable, RouteSendTranslatesAndFindsReceivers) {
  const RoutingTable routing(demo_types());
  const auto route = routing.route_send(1, "user.created", false);
  ASSERT_TRUE(route.ok()) << route.error().message;
  EXPECT_EQ(route->public_name, "user.created");
  EXPECT_EQ(route->receivers.size(), 2u);
}

TEST(RoutingTable, SendingUndeclaredNameIsNotDeclared) {
  const RoutingTable routing(demo_types());
  const auto route = routing.route_send(0, "user.delete", false);
  ASSERT_FALSE(route.ok());
  EXPECT_EQ(route.error().code, ErrorCode::not_declared);
  EXPECT_NE(route.error().message.find("web/config.yml"), std::string::npos) << route.error().message;
}

TEST(RoutingTable, CommandNobodyReceivesIsUnknownMessage) {
  const RoutingTable routing(demo_types());
  const auto route = routing.route_send(4, "saved", false);
  ASSERT_FALSE(route.ok());
  EXPECT_EQ(route.error().code, ErrorCode::unknown_message);
  EXPECT_NE(route.error().message.find("'user.saved'"), std::string::npos) << route.error().message;
}

TEST(RoutingTable, ReplyNobodySubscribesToIsStillRoutable) {
  const RoutingTable routing(demo_types());
  const auto route = routing.route_send(4, "saved", true);
  ASSERT_TRUE(route.ok()) << route.error().message;
  EXPECT_EQ(route->public_name, "user.saved");
  EXPECT_TRUE(route->receivers.empty());
}

TEST(RoutingTable, SchemasAreCollectedUnderThePublicName) {
  auto types = demo_types();
  types[4].schemas.push_back({"save", std::nullopt, Schema::compile(R"({"type": "object"})", "store schema").value()});
  types[0].schemas.push_back(
      {"user.create", std::nullopt, Schema::compile(R"({"type": "object"})", "web schema").value()});
  types[1].schemas.push_back(
      {"user.create", std::nullopt, Schema::compile(R"({"required": ["name"]})", "users schema").value()});
  const RoutingTable routing(types);
  ASSERT_EQ(routing.schemas("user.save", 1).size(), 1u);
  EXPECT_EQ(routing.schemas("user.save", 1)[0].label(), "store schema");
  EXPECT_EQ(routing.schemas("user.create", 1).size(), 2u);
  EXPECT_TRUE(routing.schemas("save", 1).empty());
}

TEST(RoutingTable, ListsPublicSendsAndReceivesPerType) {
  const RoutingTable routing(demo_types());
  ASSERT_EQ(routing.sends(4).size(), 1u);
  EXPECT_EQ(routing.sends(4)[0], "user.saved");
  ASSERT_EQ(routing.receives(4).size(), 1u);
  EXPECT_EQ(routing.receives(4)[0], "user.save");
  EXPECT_EQ(routing.type_count(), 5u);
}

TEST(RoutingTable, ASchemaOfAVersionReplacesItsTypesSchemaForEveryVersionAtThatVersion) {
  auto types = demo_types();
  const auto schema = [](const char* json, const char* label) { return Schema::compile(json, label).value(); };
  types[0].versions.push_back({"user.create", {1, 2}, 2});
  types[1].versions.push_back({"user.create", {1, 2}, 2});
  types[0].schemas.push_back({"user.create", std::nullopt, schema(R"({"type": "object"})", "web, every version")});
  types[1].schemas.push_back(
      {"user.create", std::nullopt, schema(R"({"required": ["name"]})", "users, every version")});
  types[1].schemas.push_back({"user.create", 2.0, schema(R"({"required": ["email"]})", "users, version 2")});
  const RoutingTable routing(types);

  const auto labels = [&](double version) {
    std::vector<std::string> seen;
    for (const Schema& each : routing.schemas("user.create", version)) seen.push_back(each.label());
    return seen;
  };
  EXPECT_EQ(labels(1), (std::vector<std::string>{"web, every version", "users, every version"}));
  EXPECT_EQ(labels(2), (std::vector<std::string>{"web, every version", "users, version 2"}));
  EXPECT_EQ(labels(7), labels(1)) << "a version no type gives a schema of its own: the schemas for every version";
}

TEST(RoutingTable, VersionsAreTheSendersOwnUnderThePublicName) {
  auto types = demo_types();
  types[4].versions.push_back({"save", {1, 1.5}, 1.5});
  const RoutingTable routing(types);
  EXPECT_EQ(routing.versions(4, "user.save").known, (std::vector<double>{1, 1.5}));
  EXPECT_EQ(routing.versions(4, "user.save").default_version, 1.5);
  EXPECT_EQ(routing.versions(0, "user.create").known, std::vector<double>{1}) << "no entry: version 1 alone";
}

TEST(RoutingTable, ATypeReceivesExactlyTheNamesItDeclares) {
  const RoutingTable routing(demo_types());
  EXPECT_TRUE(routing.receives_name(1, "user.create"));
  EXPECT_FALSE(routing.receives_name(0, "user.create"));
}

}  // namespace
}  // namespace exobus
