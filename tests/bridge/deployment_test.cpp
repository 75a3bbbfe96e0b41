// The deployment file: where each type runs, the NATS settings, and the typed error, with
// file and line, for each mistake.
#include "deployment.hpp"

#include <gtest/gtest.h>

#include "../core/config/config_files.hpp"

namespace exobus::bridge {
namespace {

constexpr const char* kApplication = R"(name: shop
services:
  web:
    config:
      sends: [order.place]
  shipping:
    config:
      receives: [order.place]
  audit:
    config:
      receives: [order.place]
)";

class DeploymentTest : public testing::ConfigFiles {
 protected:
  void SetUp() override {
    ConfigFiles::SetUp();
    Result<ApplicationConfig> loaded = load_application_config(write("application.yml", kApplication));
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    application = std::move(loaded).value();
  }
  Result<Deployment> load(const std::string& text) {
    return load_deployment(write("deployment.yml", text), application);
  }
  void expect_error(const std::string& text, const std::string& mentions) {
    Result<Deployment> loaded = load(text);
    ASSERT_FALSE(loaded.ok()) << "accepted: " << text;
    EXPECT_EQ(loaded.error().code, ErrorCode::config_error);
    EXPECT_NE(loaded.error().message.find(mentions), std::string::npos) << loaded.error().message;
  }
  ApplicationConfig application;
};

TEST_F(DeploymentTest, TypesListedUnderHostsRunThereAndOthersEverywhere) {
  Result<Deployment> loaded = load(R"(nats:
  servers: [nats://127.0.0.1:4222]
  replicas: 3
  ack-wait-ms: 2000
hosts:
  alpha: [web]
  beta: [shipping]
  gamma: [shipping]
reply-window-ms: 5000
)");

  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  const Deployment& deployment = loaded.value();
  EXPECT_TRUE(deployment.runs_on("web", "alpha"));
  EXPECT_FALSE(deployment.runs_on("web", "beta"));
  EXPECT_TRUE(deployment.runs_on("shipping", "beta"));
  EXPECT_TRUE(deployment.runs_on("shipping", "gamma"));
  EXPECT_TRUE(deployment.runs_on("audit", "alpha")) << "placed nowhere: everywhere";
  EXPECT_FALSE(deployment.is_placed("audit"));
  EXPECT_EQ(deployment.nats.replicas, 3u);
  EXPECT_EQ(deployment.nats.ack_wait, std::chrono::milliseconds(2000));
  EXPECT_EQ(deployment.reply_window, std::chrono::milliseconds(5000));
}

TEST_F(DeploymentTest, ATypeTheApplicationDoesNotHaveIsAnErrorAtItsLine) {
  expect_error("nats: { servers: [nats://127.0.0.1:4222] }\nhosts:\n  alpha: [web, mailer]\n",
               "deployment.yml:3: host 'alpha' runs 'mailer', which is not a service type");
}

TEST_F(DeploymentTest, AnUnknownKeyIsAnError) {
  expect_error("nats: { servers: [nats://127.0.0.1:4222], replica: 3 }\nhosts: { alpha: [web] }\n",
               "unknown key nats.replica");
  expect_error("nats: { servers: [nats://127.0.0.1:4222] }\nhosts: { alpha: [web] }\nplaces: {}\n",
               "unknown key places");
}

TEST_F(DeploymentTest, AHostOrATypeGivenTwiceIsAnError) {
  expect_error("nats: { servers: [nats://127.0.0.1:4222] }\nhosts:\n  alpha: [web]\n  alpha: [shipping]\n",
               "host 'alpha' is given twice");
  expect_error("nats: { servers: [nats://127.0.0.1:4222] }\nhosts:\n  alpha: [web, web]\n",
               "host 'alpha' lists 'web' twice");
}

TEST_F(DeploymentTest, NatsSettingsOutOfRangeOrIncompleteAreErrors) {
  expect_error("nats: { servers: [] }\nhosts: { alpha: [web] }\n", "nats.servers must be a non-empty list");
  expect_error("nats: { servers: [nats://127.0.0.1:4222], replicas: 7 }\nhosts: { alpha: [web] }\n",
               "nats.replicas is 7; it must be 1 .. 5");
  expect_error("nats: { servers: [nats://127.0.0.1:4222], password-env: PW }\nhosts: { alpha: [web] }\n",
               "nats.password-env needs nats.user");
  expect_error("hosts: { alpha: [web] }\n", "nats is required");
  expect_error("nats: { servers: [nats://127.0.0.1:4222] }\n", "hosts is required");
}

}  // namespace
}  // namespace exobus::bridge
