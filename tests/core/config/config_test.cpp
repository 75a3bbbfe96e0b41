#include "exobus/config.hpp"

#include <gtest/gtest.h>

#include "config_files.hpp"

namespace exobus {
namespace {

class Config : public testing::ConfigFiles {
 protected:
  Result<ApplicationConfig> load(std::string_view application_yml) {
    return load_application_config(write("application.yml", application_yml));
  }

  // The error is a config_error whose message starts with file:line and mentions `text`.
  void expect_error(const Result<ApplicationConfig>& result, const std::string& file, int line, std::string_view text) {
    ASSERT_FALSE(result.ok()) << "loaded without error";
    EXPECT_EQ(result.error().code, ErrorCode::config_error);
    const std::string& message = result.error().message;
    EXPECT_EQ(message.rfind((dir() / file).string() + ":" + std::to_string(line) + ":", 0), 0u) << message;
    EXPECT_NE(message.find(text), std::string::npos) << message;
  }
};

constexpr const char* kMinimal = R"(name: demo
services:
  users:
    config:
      receives: [user.create]
      sends: [user.create.ok]
)";

TEST_F(Config, MinimalApplicationGetsAllDefaults) {
  const auto config = load(kMinimal);
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->name, "demo");
  EXPECT_EQ(config->bus.segment_mode, 0660u);
  EXPECT_EQ(config->bus.max_instances, 64u);
  EXPECT_EQ(config->bus.reply_inbox_capacity, 1024u);
  ASSERT_EQ(config->bus.size_classes.size(), 4u);
  EXPECT_EQ(config->bus.size_classes.back().size, 1048576u);
  ASSERT_EQ(config->services.size(), 1u);
  const ServiceTypeConfig& users = config->services[0];
  EXPECT_EQ(users.queue_capacity, 4096u);
  EXPECT_EQ(users.ack_timeout_ms, 30000u);
  EXPECT_EQ(users.delivery_limit, 5u);
  EXPECT_EQ(users.prefetch, 256u);
  EXPECT_TRUE(users.allowed_users.empty());
  EXPECT_EQ(users.config_file, dir() / "application.yml");
}

TEST_F(Config, EveryKeyIsRead) {
  const auto config = load(R"(name: shop
bus:
  segment-mode: "0640"
  group: shop
  max-instances: 8
  reply-inbox-capacity: 64
  size-classes:
    - { size: 512, count: 10 }
    - { size: 8192, count: 2 }
services:
  users:
    config:
      sends: [user.create.ok]
      receives: [create]
      message-translation: [{public: user.create, internal: create}]
      queue-capacity: 32
      ack-timeout-ms: 1500
      delivery-limit: 3
      prefetch: 4
      allowed-users: [alice, 1001]
      allowed-groups: [staff]
)");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->bus.segment_mode, 0640u);
  EXPECT_EQ(config->bus.group, "shop");
  EXPECT_EQ(config->bus.max_instances, 8u);
  EXPECT_EQ(config->bus.reply_inbox_capacity, 64u);
  ASSERT_EQ(config->bus.size_classes.size(), 2u);
  EXPECT_EQ(config->bus.size_classes[0].size, 512u);
  EXPECT_EQ(config->bus.size_classes[1].count, 2u);
  const ServiceTypeConfig& users = config->services[0];
  EXPECT_EQ(users.queue_capacity, 32u);
  EXPECT_EQ(users.ack_timeout_ms, 1500u);
  EXPECT_EQ(users.delivery_limit, 3u);
  EXPECT_EQ(users.prefetch, 4u);
  ASSERT_EQ(users.allowed_users.size(), 2u);
  EXPECT_EQ(users.allowed_users[0].name, "alice");
  EXPECT_EQ(users.allowed_users[1].id, 1001u);
  EXPECT_EQ(users.allowed_groups[0].name, "staff");
  ASSERT_EQ(users.translations.size(), 1u);
  EXPECT_EQ(users.translations[0].public_name, "user.create");
}

TEST_F(Config, ServiceConfigIsReadFromLocation) {
  write("users-service/config.yml", "receives: [user.create]\nqueue-capacity: 128\n");
  const auto config = load("name: demo\nservices:\n  users:\n    location: ./users-service\n");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->services[0].queue_capacity, 128u);
  EXPECT_EQ(config->services[0].config_file, dir() / "./users-service" / "config.yml");
}

TEST_F(Config, ServicesKeepFileOrder) {
  const auto config = load(R"(name: demo
services:
  zeta: { config: {} }
  alpha: { config: {} }
  mid: { config: {} }
)");
  ASSERT_TRUE(config.ok()) << config.error().message;
  ASSERT_EQ(config->services.size(), 3u);
  EXPECT_EQ(config->services[0].name, "zeta");
  EXPECT_EQ(config->services[2].name, "mid");
  EXPECT_EQ(config->find_service("alpha"), 1u);
  EXPECT_EQ(config->find_service("nobody"), std::nullopt);
}

TEST_F(Config, MissingApplicationFileIsConfigError) {
  const auto result = load_application_config(dir() / "absent.yml");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::config_error);
  EXPECT_NE(result.error().message.find("absent.yml"), std::string::npos);
}

TEST_F(Config, YamlSyntaxErrorNamesFileAndLine) {
  expect_error(load("name: demo\nservices:\n  users: [unclosed\n"), "application.yml", 4, "YAML syntax error");
}

TEST_F(Config, UnknownKeySuggestsTheClosestKnownKey) {
  expect_error(load("name: demo\nservises:\n  users: {config: {}}\n"), "application.yml", 2,
               "did you mean 'services'?");
}

TEST_F(Config, UnknownKeyFarFromAnyKnownKeyListsKnownKeys) {
  expect_error(load("name: demo\ncolour: blue\nservices:\n  users: {config: {}}\n"), "application.yml", 2,
               "known keys are name, bus, services");
}

TEST_F(Config, UnknownServiceConfigKeyIsRejected) {
  expect_error(load("name: demo\nservices:\n  users:\n    config:\n      recieves: [a]\n"), "application.yml", 5,
               "did you mean 'receives'?");
}

TEST_F(Config, MissingNameIsRejected) {
  expect_error(load("services:\n  users: {config: {}}\n"), "application.yml", 1, "missing 'name'");
}

TEST_F(Config, MissingServicesIsRejected) {
  expect_error(load("name: demo\n"), "application.yml", 1, "missing 'services'");
}

TEST_F(Config, EmptyServicesIsRejected) {
  expect_error(load("name: demo\nservices: {}\n"), "application.yml", 2, "at least one");
}

TEST_F(Config, DuplicateServiceIsRejected) {
  expect_error(load("name: demo\nservices:\n  users: {config: {}}\n  users: {config: {}}\n"), "application.yml", 4,
               "'users' appears twice in services (first at line 3)");
}

TEST_F(Config, InvalidServiceNameIsRejected) {
  expect_error(load("name: demo\nservices:\n  my users: {config: {}}\n"), "application.yml", 3, "service name");
}

TEST_F(Config, ServiceWithoutLocationOrConfigIsRejected) {
  expect_error(load("name: demo\nservices:\n  users: {}\n"), "application.yml", 3, "needs 'location'");
}

TEST_F(Config, ServiceWithBothLocationAndConfigIsRejected) {
  expect_error(load("name: demo\nservices:\n  users: {location: ./u, config: {}}\n"), "application.yml", 3,
               "both 'location' and 'config'");
}

TEST_F(Config, LocationWithoutConfigFileIsRejected) {
  expect_error(load("name: demo\nservices:\n  users:\n    location: ./nowhere\n"), "application.yml", 4,
               "config.yml does not exist");
}

TEST_F(Config, ErrorInServiceConfigFileNamesThatFile) {
  write("users/config.yml", "receives: [user.create]\nqueue-capacity: 100\n");
  expect_error(load("name: demo\nservices:\n  users:\n    location: users\n"), "users/config.yml", 2,
               "not a power of two");
}

TEST_F(Config, InvalidMessageNameIsRejectedWithWhatIsWrong) {
  expect_error(load("name: demo\nservices:\n  users:\n    config:\n      receives: [\"user\\tcreate\"]\n"),
               "application.yml", 5, "control character U+0009 at byte 4");
}

TEST_F(Config, EmptyMessageNameIsRejected) {
  expect_error(load("name: demo\nservices:\n  users:\n    config:\n      sends: [\"\"]\n"), "application.yml", 5,
               "empty");
}

TEST_F(Config, NameListedTwiceIsRejected) {
  expect_error(load("name: demo\nservices:\n  users:\n    config:\n      sends: [a, b, a]\n"), "application.yml", 5,
               "listed twice in sends");
}

TEST_F(Config, SendsThatIsNotAListIsRejected) {
  expect_error(load("name: demo\nservices:\n  users:\n    config:\n      sends: user.create\n"), "application.yml", 5,
               "must be a list");
}

TEST_F(Config, QueueCapacityZeroIsRejected) {
  expect_error(load("name: demo\nservices:\n  u:\n    config:\n      queue-capacity: 0\n"), "application.yml", 5,
               "out of range");
}

TEST_F(Config, NegativeNumberIsRejected) {
  expect_error(load("name: demo\nservices:\n  u:\n    config:\n      prefetch: -4\n"), "application.yml", 5,
               "must not be negative");
}

TEST_F(Config, NonNumericNumberIsRejected) {
  expect_error(load("name: demo\nservices:\n  u:\n    config:\n      ack-timeout-ms: 30s\n"), "application.yml", 5,
               "not a whole number");
}

TEST_F(Config, DeliveryLimitAboveRangeIsRejected) {
  expect_error(load("name: demo\nservices:\n  u:\n    config:\n      delivery-limit: 256\n"), "application.yml", 5,
               "allowed: 1 to 255");
}

TEST_F(Config, QueueCapacityAboveRangeIsRejected) {
  expect_error(load("name: demo\nservices:\n  u:\n    config:\n      queue-capacity: 2097152\n"), "application.yml", 5,
               "out of range");
}

TEST_F(Config, QuotasDefaultToTheBussOwnLimits) {
  const auto config = load("name: demo\nbus:\n  max-instances: 12\nservices:\n  u: { config: {} }\n");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_FALSE(config->services[0].max_instances);
  EXPECT_EQ(max_instances_of(config->services[0], config->bus), 12u) << "a type may take every slot";
  EXPECT_EQ(config->bus.instances_per_user(), 12u) << "and so may a user";
  EXPECT_EQ(config->bus.max_connections_per_user, 256u);
  EXPECT_EQ(config->bus.registration_timeout_ms, 5000u);
}

TEST_F(Config, QuotaKeysAreRead) {
  const auto config = load(R"(name: demo
bus:
  max-instances: 12
  max-instances-per-user: 5
  max-connections-per-user: 50
  registration-timeout-ms: 250
services:
  u: { config: { max-instances: 3 } }
  v: { config: {} }
)");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(max_instances_of(config->services[0], config->bus), 3u);
  EXPECT_EQ(max_instances_of(config->services[1], config->bus), 12u);
  EXPECT_EQ(config->bus.instances_per_user(), 5u);
  EXPECT_EQ(config->bus.max_connections_per_user, 50u);
  EXPECT_EQ(config->bus.registration_timeout_ms, 250u);
}

TEST_F(Config, ATypesMaxInstancesAboveTheBussIsRejected) {
  expect_error(load("name: demo\nbus:\n  max-instances: 8\nservices:\n  u:\n    config:\n      max-instances: 9\n"),
               "application.yml", 7, "max-instances 9 of service type 'u' is above the bus's max-instances 8");
}

TEST_F(Config, ATypesMaxInstancesInItsOwnConfigFileIsBoundedByTheBus) {
  write("u/config.yml", "max-instances: 65\n");
  expect_error(load("name: demo\nservices:\n  u:\n    location: ./u\n"), "./u/config.yml", 1,
               "raise bus.max-instances");
}

TEST_F(Config, ZeroMaxInstancesForATypeIsRejected) {
  expect_error(load("name: demo\nservices:\n  u:\n    config:\n      max-instances: 0\n"), "application.yml", 5,
               "allowed: 1 to 4000");
}

TEST_F(Config, MaxInstancesPerUserAboveMaxInstancesIsRejected) {
  expect_error(load("name: demo\nbus:\n  max-instances-per-user: 65\nservices:\n  u: {config: {}}\n"),
               "application.yml", 3, "max-instances-per-user 65 is above max-instances 64");
}

TEST_F(Config, ConnectionQuotaAndRegistrationTimeoutOutOfRangeAreRejected) {
  expect_error(load("name: demo\nbus:\n  max-connections-per-user: 0\nservices:\n  u: {config: {}}\n"),
               "application.yml", 3, "max-connections-per-user is 0, out of range (allowed: 1 to 65536)");
  expect_error(load("name: demo\nbus:\n  registration-timeout-ms: 99\nservices:\n  u: {config: {}}\n"),
               "application.yml", 3, "registration-timeout-ms is 99, out of range (allowed: 100 to 3600000)");
}

TEST_F(Config, MetricsAreOffUnlessAnAddressIsGiven) {
  const auto config = load("name: demo\nservices:\n  u: {config: {}}\n");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_FALSE(config->bus.metrics_address);
}

TEST_F(Config, AMetricsPortAloneIsServedOnLoopback) {
  const auto config = load("name: demo\nbus:\n  metrics-address: \"9464\"\nservices:\n  u: {config: {}}\n");
  ASSERT_TRUE(config.ok()) << config.error().message;
  ASSERT_TRUE(config->bus.metrics_address);
  EXPECT_EQ(config->bus.metrics_address->text(), "127.0.0.1:9464");
}

TEST_F(Config, AMetricsAddressWithItsHostIsRead) {
  const auto config = load("name: demo\nbus:\n  metrics-address: 127.0.0.2:0\nservices:\n  u: {config: {}}\n");
  ASSERT_TRUE(config.ok()) << config.error().message;
  ASSERT_TRUE(config->bus.metrics_address);
  EXPECT_EQ(config->bus.metrics_address->host, "127.0.0.2");
  EXPECT_EQ(config->bus.metrics_address->port, 0u);
}

TEST_F(Config, AMetricsAddressThatIsNoIPv4AddressAndPortIsRejected) {
  expect_error(load("name: demo\nbus:\n  metrics-address: localhost:9464\nservices:\n  u: {config: {}}\n"),
               "application.yml", 3, "does not start with an IPv4 address");
  expect_error(load("name: demo\nbus:\n  metrics-address: \"127.0.0.1:\"\nservices:\n  u: {config: {}}\n"),
               "application.yml", 3, "has no TCP port (0 to 65535)");
  expect_error(load("name: demo\nbus:\n  metrics-address: \"65536\"\nservices:\n  u: {config: {}}\n"),
               "application.yml", 3, "has no TCP port (0 to 65535)");
}

TEST_F(Config, HugeNumberIsRejectedNotWrapped) {
  expect_error(load("name: demo\nservices:\n  u:\n    config:\n      prefetch: 99999999999999999999999\n"),
               "application.yml", 5, "out of range");
}

TEST_F(Config, WorldAccessibleSegmentModeIsRejected) {
  expect_error(load("name: demo\nbus:\n  segment-mode: \"0666\"\nservices:\n  u: {config: {}}\n"), "application.yml", 3,
               "every local user");
}

TEST_F(Config, SegmentModeWithoutOwnerReadWriteIsRejected) {
  expect_error(load("name: demo\nbus:\n  segment-mode: \"0460\"\nservices:\n  u: {config: {}}\n"), "application.yml", 3,
               "owner read and write");
}

TEST_F(Config, NonOctalSegmentModeIsRejected) {
  expect_error(load("name: demo\nbus:\n  segment-mode: rw-rw----\nservices:\n  u: {config: {}}\n"), "application.yml",
               3, "not an octal permission");
}

TEST_F(Config, SetuidBitInSegmentModeIsRejected) {
  expect_error(load("name: demo\nbus:\n  segment-mode: \"4660\"\nservices:\n  u: {config: {}}\n"), "application.yml", 3,
               "special bits");
}

TEST_F(Config, GroupThatIsNoNameIsRejected) {
  expect_error(load("name: demo\nbus:\n  group: \"a b\"\nservices:\n  u: {config: {}}\n"), "application.yml", 3,
               "not a group name");
}

TEST_F(Config, SizeClassNotPowerOfTwoIsRejected) {
  expect_error(load("name: demo\nbus:\n  size-classes:\n    - {size: 1000, count: 4}\nservices:\n  u: {config: {}}\n"),
               "application.yml", 4, "not a power of two");
}

TEST_F(Config, SizeClassBelowMinimumIsRejected) {
  expect_error(load("name: demo\nbus:\n  size-classes:\n    - {size: 128, count: 4}\nservices:\n  u: {config: {}}\n"),
               "application.yml", 4, "allowed: 256 to 1048576");
}

TEST_F(Config, SizeClassWithZeroCountIsRejected) {
  expect_error(load("name: demo\nbus:\n  size-classes:\n    - {size: 256, count: 0}\nservices:\n  u: {config: {}}\n"),
               "application.yml", 4, "count is 0");
}

TEST_F(Config, SizeClassMissingCountIsRejected) {
  expect_error(load("name: demo\nbus:\n  size-classes:\n    - {size: 256}\nservices:\n  u: {config: {}}\n"),
               "application.yml", 4, "missing 'count'");
}

TEST_F(Config, SizeClassesOutOfOrderAreRejected) {
  expect_error(load("name: demo\nbus:\n  size-classes:\n    - {size: 4096, count: 1}\n    - {size: 256, count: 1}\n"
                    "services:\n  u: {config: {}}\n"),
               "application.yml", 5, "strictly increasing");
}

TEST_F(Config, TranslationOfUndeclaredNameIsRejected) {
  expect_error(load(R"(name: demo
services:
  users:
    config:
      receives: [create]
      message-translation:
        - {public: user.delete, internal: delete}
)"),
               "application.yml", 7, "translation of unknown message 'delete'");
}

TEST_F(Config, NameTranslatedTwiceIsRejected) {
  expect_error(load(R"(name: demo
services:
  users:
    config:
      receives: [create]
      message-translation:
        - {public: user.create, internal: create}
        - {public: user.add, internal: create}
)"),
               "application.yml", 8, "translated twice");
}

TEST_F(Config, TwoNamesTranslatedToOnePublicNameAreRejected) {
  expect_error(load(R"(name: demo
services:
  users:
    config:
      receives: [create, add]
      message-translation:
        - {public: user.create, internal: create}
        - {public: user.create, internal: add}
)"),
               "application.yml", 8, "two messages translate to 'user.create'");
}

TEST_F(Config, TranslationOntoAnUntranslatedNameIsRejected) {
  expect_error(load(R"(name: demo
services:
  users:
    config:
      receives: [create, user.create]
      message-translation:
        - {public: user.create, internal: create}
)"),
               "application.yml", 7, "uses untranslated");
}

TEST_F(Config, TranslationMissingInternalIsRejected) {
  expect_error(load(R"(name: demo
services:
  users:
    config:
      receives: [create]
      message-translation:
        - {public: user.create}
)"),
               "application.yml", 7, "missing 'internal'");
}

TEST_F(Config, InvalidAllowedUserIsRejected) {
  expect_error(load("name: demo\nservices:\n  u:\n    config:\n      allowed-users: [\"bad user\"]\n"),
               "application.yml", 5, "not a user or group name");
}

TEST_F(Config, InlineSchemaIsCompiledAndUsed) {
  const auto config = load(R"(name: demo
services:
  users:
    config:
      receives: [user.create]
      schemas:
        user.create:
          type: object
          required: [name]
          properties:
            name: {type: string}
            age: {type: integer, minimum: 0}
)");
  ASSERT_TRUE(config.ok()) << config.error().message;
  ASSERT_EQ(config->services[0].schemas.size(), 1u);
  const Schema& schema = config->services[0].schemas[0].schema;
  EXPECT_TRUE(schema.validate(R"({"name": "a", "age": 3})").ok());
  EXPECT_FALSE(schema.validate(R"({"name": "a", "age": -1})").ok());
  EXPECT_FALSE(schema.validate(R"({"age": 3})").ok());
}

TEST_F(Config, QuotedNumberInInlineSchemaStaysString) {
  const auto config = load(R"(name: demo
services:
  users:
    config:
      receives: [m]
      schemas:
        m: {enum: ["1", 2]}
)");
  ASSERT_TRUE(config.ok()) << config.error().message;
  const Schema& schema = config->services[0].schemas[0].schema;
  EXPECT_TRUE(schema.validate(R"("1")").ok());
  EXPECT_TRUE(schema.validate("2").ok());
  EXPECT_FALSE(schema.validate("1").ok());
}

TEST_F(Config, PlainScalarsInInlineSchemaAreTypedLikeYaml) {
  const auto config = load(R"(name: demo
services:
  users:
    config:
      receives: [m]
      schemas:
        m:
          type: object
          properties:
            ratio: {type: number, maximum: 1.5e0}
            flag: {enum: [true, null, -2]}
          additionalProperties: false
)");
  ASSERT_TRUE(config.ok()) << config.error().message;
  const Schema& schema = config->services[0].schemas[0].schema;
  EXPECT_TRUE(schema.validate(R"({"ratio": 1.5, "flag": true})").ok());
  EXPECT_TRUE(schema.validate(R"({"flag": null})").ok());
  EXPECT_TRUE(schema.validate(R"({"flag": -2})").ok());
  EXPECT_FALSE(schema.validate(R"({"ratio": 1.6})").ok());
  EXPECT_FALSE(schema.validate(R"({"flag": "true"})").ok());
  EXPECT_FALSE(schema.validate(R"({"other": 1})").ok());
}

TEST_F(Config, SchemaFileIsResolvedRelativeToItsConfigFile) {
  write("users/schemas/create.json", R"({"type": "object", "required": ["name"]})");
  write("users/config.yml", "receives: [user.create]\nschemas:\n  user.create: schemas/create.json\n");
  const auto config = load("name: demo\nservices:\n  users:\n    location: users\n");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_FALSE(config->services[0].schemas[0].schema.validate("{}").ok());
}

TEST_F(Config, MissingSchemaFileIsRejected) {
  write("users/config.yml", "receives: [user.create]\nschemas:\n  user.create: schemas/absent.json\n");
  expect_error(load("name: demo\nservices:\n  users:\n    location: users\n"), "users/config.yml", 3,
               "absent.json for 'user.create' does not exist");
}

TEST_F(Config, InvalidInlineSchemaIsRejectedWithItsLine) {
  const auto result = load(R"(name: demo
services:
  users:
    config:
      receives: [user.create]
      schemas:
        user.create: {type: strng}
)");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::config_error);
  EXPECT_NE(result.error().message.find((dir() / "application.yml").string() + ":7"), std::string::npos)
      << result.error().message;
  EXPECT_NE(result.error().message.find("not a valid JSON Schema"), std::string::npos);
}

TEST_F(Config, SchemaFileThatIsNotJsonIsRejected) {
  write("users/s.json", "{\"type\": ");
  write("users/config.yml", "receives: [m]\nschemas:\n  m: s.json\n");
  const auto result = load("name: demo\nservices:\n  users:\n    location: users\n");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::config_error);
  EXPECT_NE(result.error().message.find("config.yml:3"), std::string::npos) << result.error().message;
  EXPECT_NE(result.error().message.find("not valid JSON"), std::string::npos);
}

TEST_F(Config, SchemaForUndeclaredMessageIsRejected) {
  expect_error(load(R"(name: demo
services:
  users:
    config:
      receives: [user.create]
      schemas:
        user.delete: {type: object}
)"),
               "application.yml", 7, "neither sends nor receives");
}

// --- versions ---

TEST_F(Config, ANameWithoutVersionsKnowsVersionOneAlone) {
  const auto config = load(kMinimal);
  ASSERT_TRUE(config.ok()) << config.error().message;
  const MessageVersions versions = config->services[0].versions_of("user.create");
  EXPECT_EQ(versions.known, std::vector<double>{1.0});
  EXPECT_EQ(versions.default_version, 1.0);
}

TEST_F(Config, AListOfVersionsDefaultsToTheHighest) {
  const auto config = load(R"(name: demo
services:
  users:
    config:
      receives: [user.create]
      versions:
        user.create: [1.2, 1, 1.10]
)");
  ASSERT_TRUE(config.ok()) << config.error().message;
  const MessageVersions versions = config->services[0].versions_of("user.create");
  EXPECT_EQ(versions.known, (std::vector<double>{1.0, 1.1, 1.2})) << "ascending; 1.10 is the number 1.1";
  EXPECT_EQ(versions.default_version, 1.2);
}

TEST_F(Config, AMappingOfVersionsNamesItsDefault) {
  const auto config = load(R"(name: demo
services:
  users:
    config:
      sends: [user.create]
      versions:
        user.create: { known: [1, 2], default: 1 }
)");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->services[0].versions_of("user.create").default_version, 1.0);
}

TEST_F(Config, VersionMistakesAreErrorsWithTheirLine) {
  const std::pair<std::string, std::string> mistakes[] = {
      {"user.other: [1]", "neither sends nor receives"},
      {"user.create: [1, 1.0]", "listed twice"},
      {"user.create: [-1]", "not a number of at least 0"},
      {"user.create: [one]", "not a number of at least 0"},
      {"user.create: []", "non-empty list"},
      {"user.create: { known: [1], default: 2 }", "is not among its known versions"},
      {"user.create: { default: 2 }", "need 'known"},
      {"user.create: { known: [1], latest: 1 }", "latest"},
  };
  for (const auto& [line, text] : mistakes) {
    expect_error(
        load("name: demo\nservices:\n  users:\n    config:\n      receives: [user.create]\n      versions:\n        " +
             line + "\n"),
        "application.yml", 7, text);
  }
}

TEST_F(Config, SchemasByVersionAreKeptPerVersion) {
  const auto config = load(R"(name: demo
services:
  users:
    config:
      receives: [user.create]
      versions:
        user.create: [1, 2]
      schemas:
        user.create:
          by-version:
            1: { type: object, required: [name] }
            2: { type: object, required: [email] }
)");
  ASSERT_TRUE(config.ok()) << config.error().message;
  const auto& schemas = config->services[0].schemas;
  ASSERT_EQ(schemas.size(), 2u);
  EXPECT_EQ(schemas[0].version, 1.0);
  EXPECT_EQ(schemas[1].version, 2.0);
  EXPECT_TRUE(schemas[0].schema.validate(R"({"name":"x"})").ok());
  EXPECT_FALSE(schemas[1].schema.validate(R"({"name":"x"})").ok());
}

TEST_F(Config, ASchemaForAVersionTheNameDoesNotListIsAnError) {
  expect_error(load(R"(name: demo
services:
  users:
    config:
      receives: [user.create]
      schemas:
        user.create:
          by-version:
            2: { type: object }
)"),
               "application.yml", 9, "does not list under versions");
}

TEST_F(Config, ByVersionBesideSchemaKeywordsIsAnError) {
  expect_error(load(R"(name: demo
services:
  users:
    config:
      receives: [user.create]
      schemas:
        user.create:
          type: object
          by-version:
            1: { type: object }
)"),
               "application.yml", 8, "type");
}

}  // namespace
}  // namespace exobus
