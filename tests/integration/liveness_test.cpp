// The daemon tells a hung instance (alive, but silent: no heartbeat) from a working one.
#include <gtest/gtest.h>
#include <signal.h>

#include "bus_fixture.hpp"

namespace exobus::integration {
namespace {

// The "hung" flag of the one instance of `type` in the daemon's status.
std::optional<bool> hung(const Bus& bus, const std::string& type) {
  const rapidjson::Document document = bus.status();
  if (!document.IsObject() || !document.HasMember("service_types")) return std::nullopt;
  for (const auto& entry : document["service_types"].GetArray()) {
    if (entry["name"].GetString() != type || entry["instances"].Empty()) continue;
    return entry["instances"][0]["hung"].GetBool();
  }
  return std::nullopt;
}

TEST(Liveness, StoppedInstanceIsReportedHungAndRecoversWhenContinued) {
  Bus bus(R"(
  worker:
    config: { receives: [job] }
)");
  Shared<Ledger> ledger;
  const pid_t worker = bus.spawn_service("worker", *ledger, [](Service& service) {
    service.on("job", [](Delivery&) {});
  });
  ASSERT_TRUE(Bus::ready(*ledger));
  ASSERT_TRUE(eventually([&] { return hung(bus, "worker") == false; }));

  ASSERT_EQ(::kill(worker, SIGSTOP), 0);
  // Heartbeats stop; past the daemon's bound (5 s) the instance is reported hung.
  EXPECT_TRUE(eventually([&] { return hung(bus, "worker") == true; }, std::chrono::seconds(15)));
  ASSERT_EQ(::kill(worker, SIGCONT), 0);
  EXPECT_TRUE(eventually([&] { return hung(bus, "worker") == false; }));
}

}  // namespace
}  // namespace exobus::integration
