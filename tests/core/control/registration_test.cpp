// The registration and routing replies: what the daemon encodes, the client decodes, and
// every member is checked for its type.

#include "exobus/control/registration.hpp"

#include "exobus/control/control_protocol.hpp"

#include <gtest/gtest.h>

#include <string>

namespace exobus::control {
namespace {

RegistrationReply sample() {
  RegistrationReply reply;
  reply.instance = 3;
  reply.type = 1;
  reply.member = 2;
  reply.routing.config_file = "/srv/demo/application.yml";
  reply.routing.types = {{"users", 1}, {"web", 0}};
  reply.routing.routing_generation = 7;
  reply.routing.memory = {{"directory", 0, false}, {"tenant", 1, true}, {"receiver_half", 4, false}};
  return reply;
}

JsonText json(std::string_view text) { return JsonText::parse(text).value(); }

// The sample's encoding with one member replaced (or removed, for an empty value).
JsonText with_member(const std::string& member, const std::string& value) {
  rapidjson::Document document = encode_registration_reply(sample()).document();
  document.RemoveMember(member.c_str());
  if (!value.empty()) {
    rapidjson::Document replacement;
    replacement.Parse(value.c_str());
    document.AddMember(rapidjson::Value(member.c_str(), document.GetAllocator()),
                       rapidjson::Value(replacement, document.GetAllocator()), document.GetAllocator());
  }
  return JsonText::from(document);
}

TEST(RegistrationReply, RoundTripsEveryMember) {
  const Result<RegistrationReply> decoded = decode_registration_reply(encode_registration_reply(sample()));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded.value(), sample());
}

TEST(RegistrationReply, KeepsTheWireNamesOfTheProtocolDocument) {
  const JsonText encoded = encode_registration_reply(sample());
  EXPECT_EQ(encoded.str(),
            R"({"instance":3,"type":1,"member":2,"config":"/srv/demo/application.yml","types":{"users":1,"web":0},)"
            R"("routing_generation":7,"memory":[{"role":"directory","index":0,"writable":false},)"
            R"({"role":"tenant","index":1,"writable":true},{"role":"receiver_half","index":4,"writable":false}]})");
}

TEST(RegistrationReply, EveryMissingMemberIsAProtocolErrorNamingIt) {
  for (const std::string member : {"instance", "type", "member", "memory", "config", "types", "routing_generation"}) {
    const Result<RegistrationReply> decoded = decode_registration_reply(with_member(member, ""));
    ASSERT_FALSE(decoded.ok()) << member;
    EXPECT_EQ(decoded.error().code, ErrorCode::protocol) << member;
    EXPECT_NE(decoded.error().message.find("'" + member + "'"), std::string::npos) << decoded.error().message;
  }
}

TEST(RegistrationReply, EveryMemberOfTheWrongTypeIsRefused) {
  const std::pair<std::string, std::string> wrong[] = {
      {"instance", R"("3")"},
      {"instance", "-1"},
      {"instance", "4294967296"},
      {"instance", "1.5"},
      {"type", "65536"},
      {"type", "true"},
      {"member", "null"},
      {"memory", "7"},
      {"memory", R"([{"role":"tenant","index":1}])"},
      {"memory", R"([{"role":7,"index":1,"writable":true}])"},
      {"memory", R"([{"role":"tenant","index":"1","writable":true}])"},
      {"memory", R"([{"role":"registry","index":0,"writable":true}])"},
      {"config", "[]"},
      {"types", "[1]"},
      {"types", R"({"users":"1"})"},
      {"types", R"({"users":70000})"},
      {"routing_generation", "-3"},
      {"routing_generation", R"("2")"},
  };
  for (const auto& [member, value] : wrong) {
    const Result<RegistrationReply> decoded = decode_registration_reply(with_member(member, value));
    ASSERT_FALSE(decoded.ok()) << member << "=" << value;
    EXPECT_EQ(decoded.error().code, ErrorCode::protocol) << member << "=" << value;
  }
}

TEST(RegistrationReply, MoreDescriptorsThanOneMessageCarriesAreRefused) {
  RegistrationReply reply = sample();
  reply.routing.memory.assign(kMaxDescriptors + 1, MemoryGrant{"receiver_half", 4, false});
  const Result<RegistrationReply> decoded = decode_registration_reply(encode_registration_reply(reply));
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().code, ErrorCode::protocol);
}

TEST(RegistrationReply, ABodyThatIsNoObjectIsRefused) {
  const Result<RegistrationReply> decoded = decode_registration_reply(json("[1,2]"));
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().code, ErrorCode::protocol);
}

TEST(RoutingReply, RoundTripsAndIsThePartOfTheRegistration) {
  const RoutingReply routing = sample().routing;
  const Result<RoutingReply> decoded = decode_routing_reply(encode_routing_reply(routing));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded.value(), routing);
  // A registration reply is also a routing reply: a client reads either the same way.
  const Result<RoutingReply> from_registration = decode_routing_reply(encode_registration_reply(sample()));
  ASSERT_TRUE(from_registration.ok());
  EXPECT_EQ(from_registration.value(), routing);
}

TEST(RoutingReply, NoServiceTypesIsAnEmptyMap) {
  const Result<RoutingReply> decoded =
      decode_routing_reply(json(R"({"config":"/a.yml","types":{},"routing_generation":0,"memory":[]})"));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_TRUE(decoded.value().types.empty());
}

}  // namespace
}  // namespace exobus::control
