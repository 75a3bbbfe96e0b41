// The request a message belongs to (its requestId) between real processes: an application
// starts a request with its own id or lets the library make one, and every send made on
// behalf of a handled message, from the handler, a handler thread, a reply callback or a
// delivery settled later, carries it.
#include <gtest/gtest.h>

#include "bus_fixture.hpp"

namespace exobus::integration {
namespace {

constexpr const char* kOrders = R"(
  web:
    config: { sends: [order.place, audit.note], receives: [order.place.ok] }
  orders:
    config: { receives: [order.place, stock.reserved], sends: [stock.reserve, order.place.ok, audit.note] }
  stock:
    config: { receives: [stock.reserve], sends: [stock.reserved] }
  audit:
    config: { receives: [audit.note] }
)";

struct Shop {
  explicit Shop(Bus& bus, unsigned orders_threads = 0)
      : audit(bus.connect("audit")),
        stock(bus.connect("stock")),
        orders(bus.connect("orders", orders_threads)),
        web(bus.connect("web")) {
    audit->on("audit.note", [this](Delivery& d) { notes.add(d.message()); });
    stock->on("stock.reserve", [](Delivery& d) { EXPECT_TRUE(d.reply("stock.reserved", "{}").ok()); });
  }
  bool start() { return audit->start().ok() && stock->start().ok() && orders->start().ok(); }

  Inbox notes;
  std::unique_ptr<Service> audit, stock, orders, web;
};

TEST(RequestContext, AnApplicationStartsARequestWithItsOwnId) {
  Bus bus(kOrders);
  Shop shop(bus);
  ASSERT_TRUE(shop.start());
  const Uuid http_request = Uuid::generate();

  ASSERT_TRUE(shop.web->send("audit.note", "{}", SendOptions().request_id(http_request)).ok());
  ASSERT_TRUE(shop.web->send("audit.note", "{}").ok());

  ASSERT_TRUE(eventually([&] { return shop.notes.size() == 2; }));
  EXPECT_EQ(shop.notes.messages()[0].request_id, http_request);
  EXPECT_NE(shop.notes.messages()[0].id, http_request) << "the message keeps an id of its own";
  EXPECT_EQ(shop.notes.messages()[1].request_id, shop.notes.messages()[1].id) << "no id given: a new request";
}

TEST(RequestContext, SendsThroughTheDeliveryOnAHandlerThreadCarryTheRequest) {
  Bus bus(kOrders);
  Shop shop(bus, 2);
  shop.orders->on("order.place", [&](Delivery& d) {
    EXPECT_TRUE(d.send("audit.note", R"({"from":"handler"})").ok());
    EXPECT_TRUE(d.reply("order.place.ok").ok());
  });
  ASSERT_TRUE(shop.start());
  const Uuid request = Uuid::generate();

  ASSERT_TRUE(shop.web->request("order.place", "{}", 5s, SendOptions().request_id(request)).get().ok());

  ASSERT_TRUE(eventually([&] { return shop.notes.size() == 1; }));
  EXPECT_EQ(shop.notes.messages()[0].request_id, request);
}

TEST(RequestContext, ASendFromAReplyCallbackCarriesTheRequestThroughInRequest) {
  Bus bus(kOrders);
  Shop shop(bus);
  // orders asks stock, and in stock's reply callback notes the audit: on behalf of the
  // reply's request, which is the order's.
  shop.orders->on("order.place", [&](Delivery& d) {
    Service& orders = *shop.orders;
    EXPECT_TRUE(d.send(
                     "stock.reserve", "{}",
                     [&orders](const Reply& reply) {
                       if (!reply.timed_out) {
                         EXPECT_TRUE(
                             orders.send("audit.note", R"({"from":"callback"})", reply.message.in_request()).ok());
                       }
                       return ReplyControl::done;
                     },
                     5s)
                    .ok());
  });
  ASSERT_TRUE(shop.start());
  const Uuid request = Uuid::generate();

  ASSERT_TRUE(shop.web->send("order.place", "{}", SendOptions().request_id(request)).ok());

  ASSERT_TRUE(eventually([&] { return shop.notes.size() == 1; }));
  EXPECT_EQ(shop.notes.messages()[0].request_id, request);
}

TEST(RequestContext, ASendOfTheServiceItselfInsideAHandlerStartsANewRequest) {
  Bus bus(kOrders);
  Shop shop(bus);
  shop.orders->on("order.place", [&](Delivery&) { EXPECT_TRUE(shop.orders->send("audit.note", "{}").ok()); });
  ASSERT_TRUE(shop.start());
  const Uuid request = Uuid::generate();

  ASSERT_TRUE(shop.web->send("order.place", "{}", SendOptions().request_id(request)).ok());

  ASSERT_TRUE(eventually([&] { return shop.notes.size() == 1; }));
  EXPECT_NE(shop.notes.messages()[0].request_id, request) << "only sends through the delivery belong to it";
}

TEST(RequestContext, ADeliverySettledLaterStillSendsOnBehalfOfItsRequest) {
  Bus bus(kOrders);
  Shop shop(bus);
  std::mutex mutex;
  std::vector<Delivery> held;
  shop.orders->on("order.place", [&](Delivery& d) {
    std::lock_guard lock(mutex);
    held.push_back(std::move(d));
  });
  ASSERT_TRUE(shop.start());
  const Uuid request = Uuid::generate();
  ASSERT_TRUE(shop.web->send("order.place", "{}", SendOptions().request_id(request)).ok());
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mutex);
    return held.size() == 1;
  }));

  std::thread([&] {
    std::lock_guard lock(mutex);
    EXPECT_TRUE(held[0].send("audit.note", R"({"from":"later"})").ok());
    EXPECT_TRUE(held[0].ack().ok());
  }).join();

  ASSERT_TRUE(eventually([&] { return shop.notes.size() == 1; }));
  EXPECT_EQ(shop.notes.messages()[0].request_id, request);
}

}  // namespace
}  // namespace exobus::integration
