// Bad input gets its typed error from the real bus, and the bus keeps working afterwards:
// each test ends by showing that a valid message still flows.
#include <gtest/gtest.h>

#include "bus_fixture.hpp"

namespace exobus::integration {
namespace {

constexpr const char* kBusSection = R"(
  size-classes:
    - { size: 256, count: 64 }
)";
constexpr const char* kServices = R"(
  web:
    config:
      sends: [job.run, job.orphan]
      schemas:
        job.run: { type: object, required: [n], properties: { n: { type: integer } } }
  worker:
    config: { receives: [job.run, job.other], queue-capacity: 16 }
  other:
    config: { sends: [job.other] }
)";

class BadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    web = bus.connect("web");
    ASSERT_TRUE(web);
  }

  void start_worker() {
    worker = bus.connect("worker");
    ASSERT_TRUE(worker);
    worker->on("job.run", [this](Delivery& d) { handled->record(d.message()); });
    ASSERT_TRUE(worker->start().ok());
  }

  // A valid message sent now reaches the worker.
  bool still_flows() {
    if (!web->send("job.run", numbered(100)).ok()) return false;
    return eventually([&] { return handled->saw(100); });
  }

  Bus bus{kServices, kBusSection};
  std::unique_ptr<Ledger> handled = std::make_unique<Ledger>();
  std::unique_ptr<Service> web, worker;
};

TEST_F(BadInput, MalformedJsonIsRefusedWithMalformedJson) {
  start_worker();

  const Result<void> sent = web->send("job.run", R"({"n": 1)");

  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.error().code, ErrorCode::malformed_json) << sent.error().message;
  EXPECT_TRUE(still_flows());
}

TEST_F(BadInput, PayloadBreakingTheSchemaIsRefusedWithSchemaViolation) {
  start_worker();

  const Result<void> sent = web->send("job.run", R"({"n": "seven"})");

  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.error().code, ErrorCode::schema_violation) << sent.error().message;
  EXPECT_NE(sent.error().message.find("/n"), std::string::npos) << sent.error().message;
  EXPECT_TRUE(still_flows());
}

TEST_F(BadInput, NameMissingFromSendsIsRefusedWithNotDeclared) {
  start_worker();

  const Result<void> sent = web->send("job.other", "{}");  // worker receives it; web may not send it

  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.error().code, ErrorCode::not_declared) << sent.error().message;
  EXPECT_TRUE(still_flows());
}

TEST_F(BadInput, NameNobodyReceivesIsRefusedWithUnknownMessage) {
  start_worker();

  const Result<void> sent = web->send("job.orphan", "{}");

  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.error().code, ErrorCode::unknown_message) << sent.error().message;
  EXPECT_TRUE(still_flows());
}

TEST_F(BadInput, PayloadOverTheLargestSizeClassIsRefusedWithPayloadTooLarge) {
  start_worker();

  const Result<void> sent = web->send("job.run", R"({"n": 1, "pad": ")" + std::string(300, 'x') + "\"}");

  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.error().code, ErrorCode::payload_too_large) << sent.error().message;
  EXPECT_TRUE(still_flows());
}

TEST_F(BadInput, TrySendToAFullQueueFailsAtOnceWithQueueFullAndNothingQueuedIsLost) {
  constexpr unsigned kCapacity = 16;  // queue-capacity of worker; no instance runs yet
  for (unsigned n = 0; n < kCapacity; ++n) ASSERT_TRUE(web->try_send("job.run", numbered(n)).ok()) << n;

  const Result<void> sent = web->try_send("job.run", numbered(kCapacity));

  ASSERT_FALSE(sent.ok());
  EXPECT_EQ(sent.error().code, ErrorCode::queue_full) << sent.error().message;
  start_worker();
  EXPECT_TRUE(eventually([&] { return handled->distinct(kCapacity) == kCapacity; }));
  EXPECT_FALSE(handled->saw(kCapacity));
  EXPECT_TRUE(still_flows());
}

TEST_F(BadInput, UnknownServiceTypeIsRefusedAtConnectWithConfigError) {
  start_worker();

  const Result<std::unique_ptr<Service>> stranger = bus.try_connect("stranger");

  ASSERT_FALSE(stranger.ok());
  EXPECT_EQ(stranger.error().code, ErrorCode::config_error) << stranger.error().message;
  EXPECT_NE(stranger.error().message.find("unknown service type 'stranger'"), std::string::npos)
      << to_string(stranger.error().code) << ": " << stranger.error().message;
  EXPECT_TRUE(still_flows());
}

TEST(NoDaemon, ConnectFailsWithDaemonNotRunning) {
  Bus bus(kServices, kBusSection, /*start=*/false);

  const Result<std::unique_ptr<Service>> web = bus.try_connect("web");

  ASSERT_FALSE(web.ok());
  EXPECT_EQ(web.error().code, ErrorCode::daemon_not_running) << web.error().message;
}

}  // namespace
}  // namespace exobus::integration
