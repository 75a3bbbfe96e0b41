// Commands and their replies between real processes: a reply comes back to the instance
// that sent the command, streams keep their order, an unanswered command times out,
// requestId follows the work from service to service, and message translation renames
// in both directions.
#include <gtest/gtest.h>

#include "bus_fixture.hpp"

namespace exobus::integration {
namespace {

constexpr const char* kUsers = R"(
  web:
    config: { sends: [user.create], receives: [user.create.ok] }
  users:
    config: { receives: [user.create], sends: [user.create.ok] }
)";

TEST(Replies, ReplyComesBackToTheSendingInstanceWithResponseToAndRequestId) {
  Bus bus(kUsers);
  Inbox commands;
  auto users = bus.connect("users");
  auto other_web = bus.connect("web");
  auto web = bus.connect("web");
  ASSERT_TRUE(users && other_web && web);
  users->on("user.create", [&](Delivery& d) {
    commands.add(d.message());
    EXPECT_TRUE(d.reply("user.create.ok", R"({"id":7})").ok());
  });
  ASSERT_TRUE(users->start().ok());

  // The other instance of web has no callback for it: had the reply gone there, this
  // request would time out.
  Result<Reply> reply = web->request("user.create", R"({"name":"Jean-Luc"})", 5s).get();

  ASSERT_TRUE(reply.ok()) << reply.error().message;
  ASSERT_EQ(commands.size(), 1u);
  const Received command = commands.messages()[0];
  EXPECT_EQ(reply.value().outcome, "user.create.ok");
  EXPECT_EQ(reply.value().payload, R"({"id":7})");
  EXPECT_FALSE(reply.value().timed_out);
  ASSERT_TRUE(reply.value().message.response_to.has_value());
  EXPECT_EQ(*reply.value().message.response_to, command.id);
  EXPECT_EQ(reply.value().message.request_id, command.request_id);
  EXPECT_EQ(command.request_id, command.id) << "a command sent outside any handler starts a request";
  EXPECT_EQ(reply.value().message.sender, "users");
  EXPECT_EQ(command.sender, "web");
}

TEST(Replies, StreamingRepliesArriveInOrderAndDoneEndsTheStream) {
  Bus bus(R"(
    web:
      config: { sends: [file.read], receives: [file.read.chunk, file.read.done] }
    files:
      config: { receives: [file.read], sends: [file.read.chunk, file.read.done] }
  )");
  auto files = bus.connect("files");
  auto web = bus.connect("web");
  ASSERT_TRUE(files && web);
  files->on("file.read", [](Delivery& d) {
    for (unsigned n = 0; n < 20; ++n) EXPECT_TRUE(d.reply("file.read.chunk", numbered(n)).ok());
    EXPECT_TRUE(d.reply("file.read.done", numbered(20)).ok());
    EXPECT_TRUE(d.reply("file.read.chunk", numbered(21)).ok());  // after the end: nobody listens
  });
  ASSERT_TRUE(files->start().ok());
  Inbox replies;
  std::atomic<bool> ended{false};

  ASSERT_TRUE(web->send(
                     "file.read", R"({"path":"large.csv"})",
                     [&](const Reply& reply) {
                       if (ended.load())
                         ADD_FAILURE() << "a reply after done: " << reply.outcome << " " << reply.payload;
                       Received seen = reply.message;
                       seen.name = reply.timed_out ? "timeout" : reply.outcome;
                       replies.add(seen);
                       if (reply.outcome == "file.read.done") {
                         ended.store(true);
                         return ReplyControl::done;
                       }
                       return ReplyControl::more;
                     },
                     1s)
                  .ok());

  ASSERT_TRUE(eventually([&] { return ended.load(); }));
  std::this_thread::sleep_for(1500ms);  // past the stream's timeout: no timeout call may follow
  const std::vector<Received> got = replies.messages();
  ASSERT_EQ(got.size(), 21u);
  for (unsigned n = 0; n < 20; ++n) {
    EXPECT_EQ(got[n].name, "file.read.chunk") << n;
    EXPECT_EQ(number_of(got[n].payload), n);
  }
  EXPECT_EQ(got[20].name, "file.read.done");
}

TEST(Replies, UnansweredCommandGivesTheReplyHandlerATimeout) {
  Bus bus(kUsers);
  auto users = bus.connect("users");
  auto web = bus.connect("web");
  ASSERT_TRUE(users && web);
  users->on("user.create", [](Delivery&) {});  // acks, never replies
  ASSERT_TRUE(users->start().ok());
  Inbox outcomes;

  ASSERT_TRUE(web->send(
                     "user.create", "{}",
                     [&](const Reply& reply) {
                       Received seen;
                       seen.name = reply.outcome;
                       seen.deliveries = reply.timed_out;
                       outcomes.add(seen);
                       return ReplyControl::more;
                     },
                     300ms)
                  .ok());

  ASSERT_TRUE(eventually([&] { return outcomes.size() >= 1; }));
  std::this_thread::sleep_for(300ms);  // a timeout is the last call
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes.messages()[0].name, "") << "a timeout has no outcome";
  EXPECT_EQ(outcomes.messages()[0].deliveries, 1u) << "timed_out is set";
}

TEST(Replies, UnansweredRequestFailsWithTimeout) {
  Bus bus(kUsers);
  auto web = bus.connect("web");
  ASSERT_TRUE(web);  // no users instance at all: the command waits in its queue

  Result<Reply> reply = web->request("user.create", "{}", 300ms).get();

  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().code, ErrorCode::timeout) << reply.error().message;
}

TEST(Replies, CommandSentThroughTheDeliveryOnAHandlerThreadCarriesItsRequestId) {
  Bus bus(R"(
    web:
      config: { sends: [order.place], receives: [order.place.ok] }
    orders:
      config: { receives: [order.place], sends: [stock.reserve, order.place.ok] }
    stock:
      config: { receives: [stock.reserve] }
  )");
  Inbox placed, reserved;
  auto stock = bus.connect("stock");
  auto orders = bus.connect("orders", 2);  // on a handler thread, not the receiving one
  auto web = bus.connect("web");
  ASSERT_TRUE(stock && orders && web);
  stock->on("stock.reserve", [&](Delivery& d) { reserved.add(d.message()); });
  orders->on("order.place", [&](Delivery& d) {
    placed.add(d.message());
    EXPECT_TRUE(d.send("stock.reserve", R"({"sku":1})").ok());
    EXPECT_TRUE(d.reply("order.place.ok").ok());
  });
  ASSERT_TRUE(stock->start().ok());
  ASSERT_TRUE(orders->start().ok());

  Result<Reply> reply = web->request("order.place", R"({"sku":1})", 5s).get();

  ASSERT_TRUE(reply.ok()) << reply.error().message;
  ASSERT_TRUE(eventually([&] { return reserved.size() == 1; }));
  const Received order = placed.messages()[0];
  const Received reservation = reserved.messages()[0];
  EXPECT_EQ(reservation.request_id, order.request_id);
  EXPECT_EQ(reservation.request_id, order.id) << "web's command started the request";
  EXPECT_NE(reservation.id, order.id);
  EXPECT_FALSE(reservation.response_to.has_value()) << "a further command, not a reply";
  EXPECT_EQ(reservation.sender, "orders");
}

TEST(Replies, TranslatedServiceReceivesItsInternalNameAndItsReplyArrivesUnderThePublicName) {
  Bus bus(R"(
    web:
      config: { sends: [user.create], receives: [user.create.ok] }
    users:
      config:
        receives: [create]
        sends: [create.ok]
        message-translation:
          - { public: user.create, internal: create }
          - { public: user.create.ok, internal: create.ok }
  )");
  Inbox commands;
  auto users = bus.connect("users");
  auto web = bus.connect("web");
  ASSERT_TRUE(users && web);
  users->on("create", [&](Delivery& d) {
    commands.add(d.message());
    EXPECT_TRUE(d.reply("create.ok", R"({"id":1})").ok());
  });
  ASSERT_TRUE(users->start().ok());

  Result<Reply> reply = web->request("user.create", "{}", 5s).get();

  ASSERT_TRUE(reply.ok()) << reply.error().message;
  ASSERT_EQ(commands.size(), 1u);
  EXPECT_EQ(commands.messages()[0].name, "create");
  EXPECT_EQ(reply.value().outcome, "user.create.ok");
  EXPECT_EQ(reply.value().message.name, "user.create.ok");
  EXPECT_EQ(reply.value().payload, R"({"id":1})");
}

}  // namespace
}  // namespace exobus::integration
