// Quotas with a real daemon: what one service type or one user may take of the bus, so that
// the others keep what they need (docs/security.md, "Quotas").
//
// - a type holds at most its max-instances: the next registration of it is refused with
//   quota_exceeded, and other types still register;
// - a user runs at most bus.max-instances-per-user instances, over every type: a real OS
//   user (os_accounts.hpp) is refused beyond it while root still registers;
// - a user holds at most bus.max-connections-per-user connections that are not a registered
//   instance's: the excess is closed at once, and status and registrations of others go on;
// - a connection that neither registers nor asks anything within registration-timeout-ms
//   is closed, while a registered instance's stays open.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>

#include <gtest/gtest.h>

#include "bus_fixture.hpp"
#include "os_accounts.hpp"

namespace exobus::integration {
namespace {

// A raw control connection that sends nothing: what an idle or hostile client holds.
int connect_idle(const control::RuntimePaths& paths) {
  const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strcpy(address.sun_path, paths.socket.c_str());
  if (fd == -1 || ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == -1) {
    if (fd != -1) ::close(fd);
    return -1;
  }
  return fd;
}

// Whether the daemon closed `fd` (a hang-up; a refusal's reply may wait before it).
bool hung_up(int fd) {
  pollfd probe{fd, POLLRDHUP, 0};
  return ::poll(&probe, 1, 0) == 1 && (probe.revents & (POLLRDHUP | POLLHUP)) != 0;
}

std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t count = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++count;
  return count;
}

// The instances of `type` in the daemon's status, and how many of them are connected.
std::pair<unsigned, unsigned> instances_in_status(const Bus& bus, const std::string& type) {
  const rapidjson::Document status = bus.status();
  if (!status.IsObject() || !status.HasMember("service_types")) return {0, 0};
  for (const auto& entry : status["service_types"].GetArray()) {
    if (entry["name"].GetString() != type) continue;
    unsigned connected = 0;
    for (const auto& instance : entry["instances"].GetArray()) connected += instance["connected"].GetBool() ? 1 : 0;
    return {entry["instances"].Size(), connected};
  }
  return {0, 0};
}

TEST(Quotas, ATypeAtItsMaxInstancesIsRefusedTheNextWhileOtherTypesStillRegister) {
  Bus bus(R"(
    web:
      config: { sends: [job.run] }
    worker:
      config: { receives: [job.run], max-instances: 2 }
  )",
          "max-instances: 8\n");
  std::unique_ptr<Service> first = bus.connect("worker");
  std::unique_ptr<Service> second = bus.connect("worker");
  ASSERT_TRUE(first && second);

  const Result<std::unique_ptr<Service>> third = bus.try_connect("worker");

  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.error().code, ErrorCode::quota_exceeded) << third.error().message;
  EXPECT_NE(third.error().message.find("service type 'worker' has no free instance slot (2 instances run"),
            std::string::npos)
      << third.error().message;
  EXPECT_NE(third.error().message.find("raise max-instances of service type 'worker'"), std::string::npos)
      << third.error().message;
  std::vector<std::unique_ptr<Service>> webs;
  for (int k = 0; k < 3; ++k) webs.push_back(bus.connect("web"));
  for (const auto& web : webs) EXPECT_TRUE(web) << "the bus's other slots stay for the other types";
  first.reset();
  EXPECT_TRUE(eventually([&] { return bus.try_connect("worker").ok(); })) << "a slot it gave back is free again";
}

// What a child running as another user got: how many instances it registered, and the
// refusal of the one beyond its quota. Lives in Shared memory, written by the child.
struct UserOutcome {
  std::atomic<int> done{0};
  std::atomic<int> registered{0};
  std::atomic<int> code{0};
  char message[1024]{};
};

// The held and closed counts of a child holding idle connections as another user.
struct HeldConnections {
  std::atomic<int> opened{0};
  std::atomic<int> failed{0};  // connect() itself failed
  std::atomic<int> closed{0};  // of the opened, how many the daemon closed so far
  std::atomic<int> finish{0};  // set by the test: close everything and exit
};

class UserQuotas : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to create users and switch to them";
    if (!accounts_.created()) GTEST_SKIP() << "groupadd/useradd are not available";
  }

  std::string services() const {
    return R"(
      web:
        config: { sends: [job.run], allowed-groups: [)" +
           accounts_.group + R"(] }
      worker:
        config: { receives: [job.run], allowed-groups: [)" +
           accounts_.group + R"(] }
    )";
  }

  std::string bus_section(const std::string& more) const { return "group: " + accounts_.group + "\n" + more; }

  // Opens the test's own directory (mkdtemp's 0700) for other users: the bus's modes decide.
  static void open_parent(const Bus& bus) { ASSERT_EQ(::chmod(bus.runtime_dir().parent_path().c_str(), 0711), 0); }

  Accounts accounts_;
};

TEST_F(UserQuotas, AUserAtMaxInstancesPerUserIsRefusedWhileRootStillRegisters) {
  Bus bus(services(), bus_section("max-instances: 8\nmax-instances-per-user: 2\n"));
  open_parent(bus);
  Shared<UserOutcome> outcome;
  const std::string member = accounts_.member;
  const ServiceOptions worker = bus.options("worker"), web = bus.options("web");
  bus.spawn([&] {
    if (!become(member)) return 3;
    // Two instances of two types: the quota counts the user's instances over every type.
    std::vector<std::unique_ptr<Service>> running;
    for (const ServiceOptions& options : {worker, web}) {
      Result<std::unique_ptr<Service>> service = Service::connect(options);
      if (service) running.push_back(std::move(service).value());
    }
    outcome->registered.store(static_cast<int>(running.size()));
    const Result<std::unique_ptr<Service>> beyond = Service::connect(worker);
    if (!beyond) {
      outcome->code.store(static_cast<int>(beyond.error().code));
      std::strncpy(outcome->message, beyond.error().message.c_str(), sizeof outcome->message - 1);
    }
    outcome->done.store(1);
    for (;;) ::pause();  // its instances stay while root registers
  });
  ASSERT_TRUE(eventually([&] { return outcome->done.load() == 1; }));

  ASSERT_EQ(outcome->registered.load(), 2);
  EXPECT_EQ(outcome->code.load(), static_cast<int>(ErrorCode::quota_exceeded)) << outcome->message;
  EXPECT_NE(std::string(outcome->message).find("user " + member + " (uid "), std::string::npos) << outcome->message;
  EXPECT_NE(std::string(outcome->message).find("runs 2 instances already (bus.max-instances-per-user 2)"),
            std::string::npos)
      << outcome->message;
  std::vector<std::unique_ptr<Service>> roots;
  for (int k = 0; k < 2; ++k) roots.push_back(bus.connect("worker"));
  for (const auto& root : roots) EXPECT_TRUE(root) << "root's instances are counted apart";
  EXPECT_EQ(instances_in_status(bus, "worker").first, 3u);
}

TEST_F(UserQuotas, ConnectionsOfAUserBeyondItsQuotaAreClosedAndOthersAreStillServed) {
  Bus bus(services(), bus_section("max-connections-per-user: 50\nregistration-timeout-ms: 600000\n"));
  open_parent(bus);
  Shared<HeldConnections> held;
  const std::string member = accounts_.member;
  const control::RuntimePaths paths = bus.paths();
  bus.spawn([&] {
    if (!become(member)) return 3;
    std::vector<int> fds;
    for (int k = 0; k < 300; ++k) {
      const int fd = connect_idle(paths);
      if (fd == -1) {
        held->failed.fetch_add(1);
        continue;
      }
      fds.push_back(fd);
      held->opened.fetch_add(1);
    }
    while (held->finish.load() == 0) {
      int closed = 0;
      for (const int fd : fds) closed += hung_up(fd) ? 1 : 0;
      held->closed.store(closed);
      std::this_thread::sleep_for(10ms);
    }
    for (const int fd : fds) ::close(fd);
    return 0;
  });

  ASSERT_TRUE(eventually([&] { return held->opened.load() + held->failed.load() == 300; }));
  EXPECT_EQ(held->failed.load(), 0) << "the kernel queues every connect; the daemon decides";
  EXPECT_TRUE(eventually([&] { return held->closed.load() == 250; })) << held->closed.load() << " closed";

  // While the user holds its 50: others are served.
  EXPECT_TRUE(control::request_status(paths).ok());
  std::unique_ptr<Service> worker = bus.connect("worker");
  EXPECT_TRUE(worker) << "a registration by another user goes on";
  EXPECT_TRUE(control::request_status(paths).ok());
  EXPECT_EQ(held->closed.load(), 250) << "what the daemon admitted stays until its deadline";
  EXPECT_EQ(occurrences(bus.daemon_log(), "refusing connections of " + member), 1u) << "one log line for the burst:\n"
                                                                                    << bus.daemon_log();
  held->finish.store(1);
}

TEST(Quotas, AConnectionThatNeverRegistersIsClosedAfterTheDeadlineWhileARegisteredOneStays) {
  Bus bus(kWebToWorker, "registration-timeout-ms: 300\n");
  std::unique_ptr<Service> worker = bus.connect("worker");
  ASSERT_TRUE(worker);
  const int idle = connect_idle(bus.paths());
  ASSERT_NE(idle, -1);

  EXPECT_TRUE(eventually([&] { return hung_up(idle); })) << "closed after registration-timeout-ms";
  ::close(idle);

  EXPECT_EQ(instances_in_status(bus, "worker"), std::make_pair(1u, 1u)) << "the instance's connection stays open";
  std::unique_ptr<Service> web = bus.connect("web");
  ASSERT_TRUE(web);
  Inbox inbox;
  worker->on("job.run", [&](Delivery& delivery) { inbox.add(delivery.message()); });
  ASSERT_TRUE(worker->start());
  ASSERT_TRUE(web->send("job.run", numbered(1)));
  EXPECT_TRUE(eventually([&] { return inbox.size() == 1; }));
  EXPECT_NE(bus.daemon_log().find("control connections that neither registered nor sent a request within 300 ms"),
            std::string::npos);
}

}  // namespace
}  // namespace exobus::integration
