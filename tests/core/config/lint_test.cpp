#include "exobus/lint.hpp"

#include <gtest/gtest.h>

#include "config_files.hpp"

namespace exobus {
namespace {

class Lint : public testing::ConfigFiles {
 protected:
  std::vector<LintFinding> lint_yaml(std::string_view application_yml) {
    const auto config = load_application_config(write("application.yml", application_yml));
    EXPECT_TRUE(config.ok()) << config.error().message;
    return config.ok() ? lint(*config) : std::vector<LintFinding>{};
  }
};

TEST_F(Lint, ConsistentApplicationHasNoFindings) {
  EXPECT_TRUE(lint_yaml(R"(name: demo
services:
  web: {config: {sends: [user.create], receives: [user.create.ok]}}
  users: {config: {sends: [user.create.ok], receives: [user.create]}}
)")
                  .empty());
}

TEST_F(Lint, MessageSentButNeverReceivedIsReported) {
  const auto findings = lint_yaml(R"(name: demo
services:
  web: {config: {sends: [user.create, user.delete]}}
  users: {config: {receives: [user.create]}}
)");
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].kind, LintFinding::Kind::sent_but_never_received);
  EXPECT_EQ(findings[0].service, "web");
  EXPECT_EQ(findings[0].message, "user.delete");
  const std::string line = to_string(findings[0]);
  EXPECT_NE(line.find("'web' sends 'user.delete'"), std::string::npos) << line;
  EXPECT_NE(line.find("no service receives it"), std::string::npos) << line;
}

TEST_F(Lint, MessageReceivedButNeverSentIsReported) {
  const auto findings = lint_yaml(R"(name: demo
services:
  web: {config: {sends: [user.create]}}
  users: {config: {receives: [user.create, user.purge]}}
)");
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].kind, LintFinding::Kind::received_but_never_sent);
  EXPECT_EQ(findings[0].service, "users");
  EXPECT_EQ(findings[0].message, "user.purge");
  EXPECT_NE(to_string(findings[0]).find("'users' receives 'user.purge'"), std::string::npos);
}

TEST_F(Lint, TranslatedNamesAreMatchedByPublicName) {
  EXPECT_TRUE(lint_yaml(R"(name: demo
services:
  web: {config: {sends: [user.create]}}
  users:
    config:
      receives: [create]
      message-translation: [{public: user.create, internal: create}]
)")
                  .empty());
}

TEST_F(Lint, FindingForTranslatedNameShowsBothNames) {
  const auto findings = lint_yaml(R"(name: demo
services:
  users:
    config:
      receives: [create]
      message-translation: [{public: user.create, internal: create}]
)");
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].message, "user.create");
  EXPECT_EQ(findings[0].as_declared, "create");
  EXPECT_NE(to_string(findings[0]).find("'user.create' (its 'create')"), std::string::npos) << to_string(findings[0]);
}

TEST_F(Lint, EveryFindingIsReportedInServiceOrder) {
  const auto findings = lint_yaml(R"(name: demo
services:
  a: {config: {sends: [x], receives: [y]}}
  b: {config: {sends: [z]}}
)");
  ASSERT_EQ(findings.size(), 3u);
  EXPECT_EQ(findings[0].message, "x");
  EXPECT_EQ(findings[1].message, "y");
  EXPECT_EQ(findings[2].service, "b");
}

}  // namespace
TEST_F(Lint, MetricsOnLoopbackAreNoFinding) {
  EXPECT_TRUE(lint_yaml(R"(name: demo
bus: {metrics-address: "127.0.0.1:9464"}
services:
  web: {config: {sends: [ping], receives: [ping]}}
)")
                  .empty());
}

TEST_F(Lint, MetricsServedBeyondLoopbackAreReported) {
  const auto findings = lint_yaml(R"(name: demo
bus: {metrics-address: "0.0.0.0:9464"}
services:
  web: {config: {sends: [ping], receives: [ping]}}
)");
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].kind, LintFinding::Kind::metrics_beyond_loopback);
  const std::string line = to_string(findings[0]);
  EXPECT_NE(line.find("bus.metrics-address 0.0.0.0:9464 serves the bus's metrics"), std::string::npos) << line;
}

}  // namespace exobus
