// Refusals that tell their causes apart, between real processes: a full queue refuses a
// fan-out for every receiving type at once (queue_full: a fan-out reaches every type or
// none), no free message buffer (pool_exhausted: exhaustion_test); a reply timeout that is
// no outcome, beside an outcome really named "timeout"; and a reply under a name its
// requester does not receive, refused at run time as lint refuses it.
#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include "bus_fixture.hpp"
#include "exobus/lint.hpp"
#include "exobus/shm/fault_point.hpp"

namespace exobus::integration {
namespace {

// job.run fans out to `big` (roomy) and `small` (16 slots). A queue belongs to one sending
// type and one receiving type, so only web's own sends fill web's queue to small.
constexpr const char* kFanOut = R"(
  web:
    config: { sends: [job.run] }
  big:
    config: { receives: [job.run] }
  small:
    config: { receives: [job.run], queue-capacity: 16 }
)";
constexpr unsigned kSmall = 16;

TEST(Refusals, AFanOutThatOneTypeHasNoRoomForReachesNoType) {
  Bus bus(kFanOut);
  auto web = bus.connect("web");
  ASSERT_TRUE(web);
  for (unsigned n = 0; n < kSmall; ++n) ASSERT_TRUE(web->try_send("job.run", numbered(n)).ok()) << n;

  const Result<void> refused = web->try_send("job.run", "{}");

  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::queue_full) << refused.error().message;
  EXPECT_NE(refused.error().message.find("service type 'small'"), std::string::npos) << refused.error().message;
  EXPECT_EQ(bus.type_status("big", "queued"), kSmall) << "big does not have the refused message either";
}

TEST(Refusals, AQueueThatFillsWhileAFanOutIsUnderWayRefusesItForEveryType) {
  Bus bus(kFanOut);
  // The sender stops itself between its two targets (big claimed, small not yet);
  // meanwhile another web instance fills small's queue; when it runs on, small refuses and
  // big's claim is given up: nobody receives the message.
  const ServiceOptions web_options = bus.options("web");
  const pid_t sender = bus.spawn([web_options] {
    auto web = Service::connect(web_options);
    if (!web) return 10;
    shm::arm_fault(shm::FaultPoint::send_between_targets, 1, shm::FaultAction::stop_process);
    const Result<void> sent = web.value()->try_send("job.run", R"({"paused":true})");
    if (sent.ok()) return 11;
    return sent.error().code == ErrorCode::queue_full ? 0 : 12;
  });
  int status = 0;
  ASSERT_TRUE(eventually([&] { return ::waitpid(sender, &status, WNOHANG | WUNTRACED) == sender; }));
  ASSERT_TRUE(WIFSTOPPED(status)) << "the sender should have stopped between its targets";
  auto other_web = bus.connect("web");
  ASSERT_TRUE(other_web);
  unsigned sent = 0;
  while (sent < kSmall && other_web->try_send("job.run", numbered(sent)).ok()) ++sent;
  EXPECT_EQ(sent, kSmall) << "the paused send claimed nothing in small's queue yet";

  ::kill(sender, SIGCONT);

  EXPECT_EQ(bus.wait_child(sender), 0) << "11: sent, 10: no connect, 12: another error than queue_full";
  auto big = bus.connect("big");
  ASSERT_TRUE(big);
  std::atomic<unsigned> paused{0}, others{0};
  big->on("job.run", [&](Delivery& d) { ++(d.message().payload == R"({"paused":true})" ? paused : others); });
  ASSERT_TRUE(big->start().ok());
  EXPECT_TRUE(eventually([&] { return others.load() == sent; }));
  EXPECT_EQ(paused.load(), 0u) << "big must not receive a fan-out that small refused";
}

constexpr const char* kUsers = R"(
  web:
    config: { sends: [user.create], receives: [user.create.ok, timeout] }
  users:
    config: { receives: [user.create], sends: [user.create.ok, timeout, user.create.failed] }
)";

TEST(Refusals, AReplyTimeoutIsNoOutcomeAndAnOutcomeNamedTimeoutIsAReply) {
  Bus bus(kUsers);
  auto users = bus.connect("users");
  auto web = bus.connect("web");
  ASSERT_TRUE(users && web);
  users->on("user.create", [](Delivery& d) {
    if (d.message().payload == R"({"answer":true})") {
      EXPECT_TRUE(d.reply("timeout", "{}").ok());
    }
  });
  ASSERT_TRUE(users->start().ok());

  Result<Reply> answered = web->request("user.create", R"({"answer":true})", 5s).get();
  Result<Reply> silent = web->request("user.create", R"({"answer":false})", 300ms).get();

  ASSERT_TRUE(answered.ok()) << "a reply named timeout is a reply: " << answered.error().message;
  EXPECT_EQ(answered.value().outcome, "timeout");
  EXPECT_FALSE(answered.value().timed_out);
  ASSERT_FALSE(silent.ok());
  EXPECT_EQ(silent.error().code, ErrorCode::timeout);
}

TEST(Refusals, AReplyTheRequesterDoesNotReceiveIsRefusedAtRunTimeAsLintRefusesIt) {
  Bus bus(kUsers);
  // Lint's verdict on the same configuration: user.create.failed is sent and not received.
  const Result<ApplicationConfig> config = load_application_config(bus.config_file());
  ASSERT_TRUE(config.ok()) << config.error().message;
  bool lint_refuses = false;
  for (const LintFinding& finding : lint(config.value())) {
    lint_refuses = lint_refuses || (finding.kind == LintFinding::Kind::sent_but_never_received &&
                                    finding.message == "user.create.failed");
  }
  EXPECT_TRUE(lint_refuses);

  std::atomic<int> refusal{-1};
  auto users = bus.connect("users");
  auto web = bus.connect("web");
  ASSERT_TRUE(users && web);
  users->on("user.create", [&](Delivery& d) {
    const Result<void> replied = d.reply("user.create.failed", "{}");
    refusal = replied.ok() ? 0 : static_cast<int>(replied.error().code);
    EXPECT_NE(replied.ok() ? std::string() : replied.error().message, "");
  });
  ASSERT_TRUE(users->start().ok());

  Result<Reply> reply = web->request("user.create", "{}", 300ms).get();

  ASSERT_FALSE(reply.ok()) << "web never gets a reply it does not receive";
  ASSERT_TRUE(eventually([&] { return refusal.load() != -1; }));
  EXPECT_EQ(refusal.load(), static_cast<int>(ErrorCode::unknown_message));
}

}  // namespace
}  // namespace exobus::integration
