// Service::call: a request whose caller takes the replies on its own thread while it waits.
// Two real services on a test bus, in one process (so TSan sees every thread): the caller's
// replies, other threads' requests and streams meanwhile, timeouts, stop, and the one call
// it refuses.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "../config/config_files.hpp"
#include "exobus/test_bus.hpp"

namespace exobus {
namespace {

using namespace std::chrono_literals;

constexpr const char* kEcho = R"(name: calls
bus:
  max-instances: 4
  reply-inbox-capacity: 256
  size-classes:
    - { size: 256, count: 1024 }
services:
  web:
    config:
      sends: [echo.ping, echo.stream, echo.silent]
      receives: [echo.pong]
  echo:
    config:
      receives: [echo.ping, echo.stream, echo.silent]
      sends: [echo.pong]
      queue-capacity: 512
)";

class CallTest : public testing::ConfigFiles {
 protected:
  // web calls echo, which answers echo.ping with its payload, echo.stream with three
  // replies, and echo.silent not at all.
  void start(WaitMode web_wait = WaitMode::adaptive) {
    stop_all();
    Result<std::unique_ptr<TestBus>> created = TestBus::create(write("application.yml", kEcho));
    ASSERT_TRUE(created.ok()) << created.error().message;
    bus_ = std::move(created).value();
    Result<std::unique_ptr<Service>> echo = bus_->connect("echo");
    Result<std::unique_ptr<Service>> web = bus_->connect(ServiceOptions{.service = "web", .wait_mode = web_wait});
    ASSERT_TRUE(echo.ok() && web.ok());
    echo_ = std::move(echo).value();
    web_ = std::move(web).value();
    echo_->on("echo.ping", [](Delivery& d) { EXPECT_TRUE(d.reply("echo.pong", d.message().payload).ok()); });
    echo_->on("echo.stream", [](Delivery& d) {
      for (int part = 1; part <= 3; ++part) EXPECT_TRUE(d.reply("echo.pong", std::to_string(part)).ok());
    });
    echo_->on("echo.silent", [](Delivery&) {});
    ASSERT_TRUE(echo_->start().ok());
  }
  void TearDown() override {
    stop_all();
    ConfigFiles::TearDown();
  }
  void stop_all() {
    if (web_) web_->stop();
    if (echo_) echo_->stop();
    web_.reset();
    echo_.reset();
    bus_.reset();
  }

  std::unique_ptr<TestBus> bus_;
  std::unique_ptr<Service> echo_;
  std::unique_ptr<Service> web_;
};

TEST_F(CallTest, ReturnsTheFirstReplyWithEveryField) {
  start();
  const Result<Reply> reply = web_->call("echo.ping", R"({"n":1})", 5s);
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_EQ(reply.value().outcome, "echo.pong");
  EXPECT_EQ(reply.value().payload, R"({"n":1})");
  EXPECT_FALSE(reply.value().timed_out);
  EXPECT_EQ(reply.value().message.sender, "echo");
  EXPECT_TRUE(reply.value().message.response_to.has_value());

  // A stream's first reply; the two after it are acknowledged and dropped, and the next
  // call gets its own reply, not one of them.
  const Result<Reply> first = web_->call("echo.stream", "{}", 5s);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first.value().payload, "1");
  const Result<Reply> next = web_->call("echo.ping", R"({"n":2})", 5s);
  ASSERT_TRUE(next.ok()) << next.error().message;
  EXPECT_EQ(next.value().payload, R"({"n":2})");
}

TEST_F(CallTest, NoReplyIsATimeoutErrorAndTheNextCallStillWorks) {
  start();
  const Result<Reply> silent = web_->call("echo.silent", "{}", 50ms);
  ASSERT_FALSE(silent.ok());
  EXPECT_EQ(silent.error().code, ErrorCode::timeout);
  const Result<Reply> reply = web_->call("echo.ping", "7", 5s);
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  EXPECT_EQ(reply.value().payload, "7");
}

TEST_F(CallTest, EveryWaitModeGetsItsReply) {
  for (const WaitMode mode : {WaitMode::busy_poll, WaitMode::sleep}) {
    start(mode);
    for (int n = 0; n < 50; ++n) {
      const Result<Reply> reply = web_->call("echo.ping", std::to_string(n), 5s);
      ASSERT_TRUE(reply.ok()) << reply.error().message;
      EXPECT_EQ(reply.value().payload, std::to_string(n));
    }
  }
}

// Callers take each other's replies, and the reply thread takes some, while other threads
// wait on futures and a stream: every reply still reaches its own request, once.
TEST_F(CallTest, ManyCallersAndOtherRequestsEachGetTheirOwnReplies) {
  start();
  constexpr int kCallers = 4, kRequesters = 2, kEach = 300;
  std::atomic<int> wrong{0}, failed{0}, stream_parts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kCallers; ++t) {
    threads.emplace_back([&, t] {
      for (int n = 0; n < kEach; ++n) {
        const std::string payload = std::to_string(t * 100000 + n);
        const Result<Reply> reply = web_->call("echo.ping", payload, 10s);
        if (!reply.ok()) {
          ++failed;
        } else if (reply.value().payload != payload) {
          ++wrong;
        }
      }
    });
  }
  for (int t = 0; t < kRequesters; ++t) {
    threads.emplace_back([&, t] {
      for (int n = 0; n < kEach; ++n) {
        const std::string payload = std::to_string(-(t * 100000 + n + 1));
        const Result<Reply> reply = web_->request("echo.ping", payload, 10s).get();
        if (!reply.ok()) {
          ++failed;
        } else if (reply.value().payload != payload) {
          ++wrong;
        }
      }
    });
  }
  threads.emplace_back([&] {
    for (int n = 0; n < kEach / 10; ++n) {
      std::promise<void> ended;
      auto parts = std::make_shared<int>(0);
      const Result<void> sent = web_->send(
          "echo.stream", "{}",
          [&, parts](const Reply& reply) {
            if (reply.timed_out) {
              ended.set_value();
              return ReplyControl::done;
            }
            ++stream_parts;
            if (++*parts < 3) return ReplyControl::more;
            ended.set_value();
            return ReplyControl::done;
          },
          10s);
      if (!sent.ok()) ++failed;
      ended.get_future().wait();
    }
  });
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(stream_parts.load(), 3 * (kEach / 10));
}

TEST_F(CallTest, AReplyHandlerOfTheSameServiceIsRefusedACall) {
  start();
  std::promise<Result<Reply>> inner;
  ASSERT_TRUE(web_->send(
                      "echo.ping", "1",
                      [&](const Reply&) {
                        inner.set_value(web_->call("echo.ping", "2", 1s));
                        return ReplyControl::done;
                      },
                      5s)
                  .ok());
  const Result<Reply> refused = inner.get_future().get();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::refused);
  EXPECT_NE(refused.error().message.find("reply handler"), std::string::npos) << refused.error().message;
}

TEST_F(CallTest, StopEndsTheRequestsStillAwaitingReplies) {
  start();
  std::future<Result<Reply>> unanswered = web_->request("echo.silent", "{}", 1h);
  std::this_thread::sleep_for(20ms);  // the command is taken and left unanswered
  web_->stop();
  ASSERT_EQ(unanswered.wait_for(5s), std::future_status::ready);
  const Result<Reply> reply = unanswered.get();
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().code, ErrorCode::timeout);
}

}  // namespace
}  // namespace exobus
