// The demo's services, each tested alone on a test bus that loads the demo's own
// application.yml: the other service types are played by the bus.
#include <gtest/gtest.h>

#include <cstdio>
#include <future>
#include <set>
#include <string>
#include <thread>

#include "exobus/test_bus.hpp"
#include "files_service.hpp"
#include "subscriber_service.hpp"
#include "users_service.hpp"
#include "web_client.hpp"

namespace demo {
namespace {

using namespace std::chrono_literals;
using exobus::Delivery;
using exobus::Reply;
using exobus::ReplyControl;
using exobus::TestBus;

// What a service writes, captured for the test to read.
class Captured {
 public:
  Captured() : file_(::open_memstream(&buffer_, &size_)) {}
  ~Captured() {
    std::fclose(file_);
    std::free(buffer_);
  }
  std::FILE* file() { return file_; }
  std::string text() {
    std::fflush(file_);
    return std::string(buffer_, size_);
  }

 private:
  char* buffer_ = nullptr;
  std::size_t size_ = 0;
  std::FILE* file_;
};

class DemoServices : public ::testing::Test {
 protected:
  void SetUp() override {
    auto created = TestBus::create(DEMO_APPLICATION);
    ASSERT_TRUE(created.ok()) << created.error().message;
    bus = std::move(created).value();
  }
  void TearDown() override {
    service.reset();
    bus.reset();
  }
  void connect(const char* type) {
    auto connected = bus->connect(type);
    ASSERT_TRUE(connected.ok()) << connected.error().message;
    service = std::move(connected).value();
  }

  Captured log;
  std::unique_ptr<TestBus> bus;
  std::unique_ptr<exobus::Service> service;
};

TEST_F(DemoServices, UsersRepliesToUserCreateWithTheNewAccount) {
  connect("users");
  serve_users(*service, log.file());
  ASSERT_TRUE(service->start().ok());

  exobus::Result<Reply> created = bus->request("web", "user.create", R"({"name":"Jean-Luc","email":"jl@x"})");

  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_EQ(created.value().outcome, "user.create.ok") << "users' create.ok under its public name";
  EXPECT_EQ(created.value().payload, R"({"id":1,"request":{"name":"Jean-Luc","email":"jl@x"}})");
  EXPECT_NE(log.text().find("users: creating account"), std::string::npos);
}

TEST_F(DemoServices, UsersAnnouncesEachNewAccountToAuditAndMailerInTheSameRequest) {
  connect("users");
  serve_users(*service, log.file());
  ASSERT_TRUE(service->start().ok());
  const exobus::Uuid request = exobus::Uuid::generate();

  ASSERT_TRUE(
      bus->request("web", "user.create", R"({"name":"a","email":"a@x"})", 1s, exobus::SendOptions().request_id(request))
          .ok());
  auto first = bus->wait_for("user.created");
  auto second = bus->wait_for("user.created");

  ASSERT_TRUE(first.ok() && second.ok());
  const std::set<std::string> receivers{first.value().receiver, second.value().receiver};
  EXPECT_EQ(receivers, (std::set<std::string>{"audit", "mailer"})) << "in either order";
  EXPECT_EQ(first.value().message.request_id, request);
  EXPECT_EQ(first.value().message.sender, "users");
}

TEST_F(DemoServices, AUserCreateBreakingTheSchemaNeverReachesUsers) {
  connect("users");
  serve_users(*service, log.file());
  ASSERT_TRUE(service->start().ok());

  const exobus::Result<void> refused = bus->send("web", "user.create", R"({"name":42})");

  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, exobus::ErrorCode::schema_violation);
  EXPECT_EQ(log.text(), "") << "users saw nothing";
}

TEST_F(DemoServices, FilesStreamsTenProgressRepliesThenDone) {
  connect("files");
  serve_files(*service, 0ms);
  ASSERT_TRUE(service->start().ok());
  std::mutex mutex;
  std::vector<std::string> outcomes;
  std::promise<void> finished;

  ASSERT_TRUE(bus->send(
                     "web", "file.copy", R"({"from":"a","to":"b"})",
                     [&](const Reply& reply) {
                       std::lock_guard lock(mutex);
                       outcomes.push_back(reply.timed_out ? "timed out" : reply.outcome);
                       if (reply.timed_out || reply.outcome == "file.copy.done") {
                         finished.set_value();
                         return ReplyControl::done;
                       }
                       return ReplyControl::more;
                     },
                     2s)
                  .ok());
  finished.get_future().wait();

  std::lock_guard lock(mutex);
  ASSERT_EQ(outcomes.size(), 11u);
  for (std::size_t n = 0; n < 10; ++n) EXPECT_EQ(outcomes[n], "file.copy.in-progress") << n;
  EXPECT_EQ(outcomes[10], "file.copy.done");
}

TEST_F(DemoServices, AuditWritesEveryUserCreatedItGets) {
  connect("audit");
  serve_subscriber(*service, log.file());
  ASSERT_TRUE(service->start().ok());

  ASSERT_TRUE(bus->send("users", "user.created", R"({"id":3})").ok());

  ASSERT_TRUE(bus->wait_for("user.created").ok()) << "mailer, played, got it too";
  for (int round = 0; round < 200 && log.text().empty(); ++round) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(log.text(), "audit: user.created {\"id\":3}\n");
}

TEST_F(DemoServices, WebCreatesAUserAndFollowsAFileCopyToItsEnd) {
  connect("web");
  bus->on("users", "create", [](Delivery& d) { EXPECT_TRUE(d.reply("create.ok", R"({"id":9})").ok()); });
  bus->on("files", "file.copy", [](Delivery& d) {
    EXPECT_TRUE(d.reply("file.copy.in-progress", R"({"percent":50})").ok());
    EXPECT_TRUE(d.reply("file.copy.done", R"({"megabytes":1})").ok());
  });

  const int status = run_web(*service, log.file(), 2s);

  EXPECT_EQ(status, 0) << log.text();
  const std::string said = log.text();
  EXPECT_NE(said.find("web: user.create.ok {\"id\":9}"), std::string::npos) << said;
  EXPECT_NE(said.find("refused before it leaves: payload breaks the schema"), std::string::npos) << said;
  EXPECT_NE(said.find("copying [#####     ] 50%"), std::string::npos) << said;
  EXPECT_NE(said.find("done {\"megabytes\":1}"), std::string::npos) << said;
}

TEST_F(DemoServices, WebReportsAUserCreateThatGetsNoAnswer) {
  connect("web");
  bus->on("users", "create", [](Delivery&) {});  // acks, never replies

  const int status = run_web(*service, log.file(), 200ms);

  EXPECT_EQ(status, 1);
  EXPECT_NE(log.text().find("web: user.create failed: no reply to 'user.create' within 200 ms"), std::string::npos)
      << log.text();
}

}  // namespace
}  // namespace demo
