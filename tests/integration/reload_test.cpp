// The daemon reloads its configuration on SIGHUP without restarting anyone: new messages
// and new service types take effect for services that are already running.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>

#include "bus_fixture.hpp"

namespace exobus::integration {
namespace {

constexpr const char* kBefore = R"(
  web:
    config: { sends: [order.placed] }
  billing:
    config: { receives: [order.placed] }
)";

TEST(Reload, SighupAddsAMessageAndANewServiceTypeForRunningServices) {
  Bus bus(kBefore);
  auto web = bus.connect("web");
  ASSERT_TRUE(web);
  EXPECT_EQ(web->send("order.shipped", numbered(1)).error().code, ErrorCode::not_declared);

  {
    std::ofstream config(bus.config_file());
    config << "name: " << bus.name() << "\nservices:\n"
           << "  web:\n    config: { sends: [order.placed, order.shipped] }\n"
           << "  billing:\n    config: { receives: [order.placed] }\n"
           << "  shipping:\n    config: { receives: [order.shipped] }\n";
  }
  ASSERT_EQ(::kill(bus.daemon_pid(), SIGHUP), 0);
  ASSERT_TRUE(eventually([&] { return bus.daemon_log().find("configuration reloaded") != std::string::npos; }));

  Inbox shipped;
  auto shipping = bus.connect("shipping");  // a service type that did not exist at start
  ASSERT_TRUE(shipping);
  shipping->on("order.shipped", [&](Delivery& delivery) { shipped.add(delivery.message()); });
  ASSERT_TRUE(shipping->start().ok());
  // The running sender picks the new routing up on its next send.
  ASSERT_TRUE(web->send("order.shipped", numbered(2)).ok());
  ASSERT_TRUE(eventually([&] { return shipped.size() == 1; }));
  EXPECT_EQ(shipped.messages()[0].sender, "web");
}

TEST(Reload, ABrokenConfigurationIsRefusedAndRunningServicesKeepTheirs) {
  Bus bus(kBefore);
  Inbox orders;
  auto billing = bus.connect("billing");
  auto web = bus.connect("web");
  ASSERT_TRUE(billing && web);
  billing->on("order.placed", [&](Delivery& delivery) { orders.add(delivery.message()); });
  ASSERT_TRUE(billing->start().ok());

  { std::ofstream(bus.config_file()) << "name: [unclosed\n"; }
  ASSERT_EQ(::kill(bus.daemon_pid(), SIGHUP), 0);
  ASSERT_TRUE(eventually([&] { return bus.daemon_log().find("reload refused") != std::string::npos; }));

  ASSERT_TRUE(web->send("order.placed", numbered(1)).ok());
  ASSERT_TRUE(eventually([&] { return orders.size() == 1; }));
}

TEST(Reload, AnAliasBombIsRefusedAndTheDaemonKeepsServingTheRunningConfiguration) {
  Bus bus(kBefore);
  Inbox orders;
  auto billing = bus.connect("billing");
  auto web = bus.connect("web");
  ASSERT_TRUE(billing && web);
  billing->on("order.placed", [&](Delivery& delivery) { orders.add(delivery.message()); });
  ASSERT_TRUE(billing->start().ok());

  // "Billion laughs": nine anchors of nine aliases each, 9^9 nodes from a few hundred bytes.
  {
    std::ofstream config(bus.config_file());
    config << "name: " << bus.name() << "\nservices:\n"
           << "  web:\n    config: { sends: [order.placed] }\n"
           << "  billing:\n    config:\n      receives: [order.placed]\n      schemas:\n        order.placed:\n"
           << "          a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
    for (char anchor = 'b'; anchor <= 'i'; ++anchor) {
      const char alias = static_cast<char>(anchor - 1);
      config << "          " << anchor << ": &" << anchor << " [";
      for (int k = 0; k < 9; ++k) config << (k ? ", *" : "*") << alias;
      config << "]\n";
    }
  }
  ASSERT_EQ(::kill(bus.daemon_pid(), SIGHUP), 0);
  ASSERT_TRUE(eventually([&] { return bus.daemon_log().find("reload refused") != std::string::npos; }));

  const std::string log = bus.daemon_log();
  EXPECT_NE(log.find("the configuration expands to more than 100000 nodes (YAML aliases?)"), std::string::npos)
      << log;
  EXPECT_NE(log.find(bus.config_file().string() + ":"), std::string::npos) << "the error names the file: " << log;
  int status = 0;
  EXPECT_EQ(::waitpid(bus.daemon_pid(), &status, WNOHANG), 0) << "exobusd exited with status " << status;
  EXPECT_TRUE(control::request_status(bus.paths()).ok()) << "exobusd stopped answering";
  ASSERT_TRUE(web->send("order.placed", numbered(1)).ok());
  ASSERT_TRUE(eventually([&] { return orders.size() == 1; }));
  EXPECT_EQ(web->send("order.shipped", numbered(2)).error().code, ErrorCode::not_declared)
      << "the sender's configuration is still the running one";
}

}  // namespace
}  // namespace exobus::integration
