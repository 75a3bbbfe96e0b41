// Deliveries settled after their handler returned, between real processes: taken out of the
// handler, a delivery keeps its lease (renewable past the ack timeout), its place in the
// prefetch and its payload until it is settled, from any thread; dropped unsettled, or still
// held when its service stops, it is released and redelivered.
#include <gtest/gtest.h>

#include "bus_fixture.hpp"

namespace exobus::integration {
namespace {

constexpr const char* kJobs = R"(
  web:
    config: { sends: [job.run] }
  worker:
    config: { receives: [job.run], ack-timeout-ms: 300, prefetch: 2 }
)";

// Deliveries a handler took out, for the test's thread to settle.
class Held {
 public:
  Handler keeper() {
    return [this](Delivery& delivery) {
      std::lock_guard lock(mutex_);
      deliveries_.push_back(std::move(delivery));
    };
  }
  std::size_t size() {
    std::lock_guard lock(mutex_);
    return deliveries_.size();
  }
  // Runs `body` on the delivery at `index` from a thread of its own.
  template <class Body>
  void on_another_thread(std::size_t index, Body body) {
    std::thread([&] {
      std::lock_guard lock(mutex_);
      body(deliveries_.at(index));
    }).join();
  }
  void clear() {
    std::lock_guard lock(mutex_);
    deliveries_.clear();
  }

 private:
  std::mutex mutex_;
  std::vector<Delivery> deliveries_;
};

TEST(DeferredSettling, ADeliveryAckedFromAnotherThreadAfterItsHandlerReturnedIsNotRedelivered) {
  Bus bus(kJobs);
  Held held;
  Inbox seen;
  auto worker = bus.connect("worker");
  auto web = bus.connect("web");
  ASSERT_TRUE(worker && web);
  worker->on("job.run", [&, keep = held.keeper()](Delivery& d) {
    seen.add(d.message());
    keep(d);
  });
  ASSERT_TRUE(worker->start().ok());

  ASSERT_TRUE(web->send("job.run", numbered(1)).ok());
  ASSERT_TRUE(eventually([&] { return held.size() == 1; }));
  held.on_another_thread(0, [](Delivery& d) {
    EXPECT_FALSE(d.settled()) << "returning from the handler settled nothing";
    EXPECT_TRUE(d.ack().ok());
    EXPECT_EQ(d.ack().error().code, ErrorCode::closed) << "settled once";
  });

  std::this_thread::sleep_for(600ms);  // two ack timeouts: a lost ack would redeliver by now
  EXPECT_EQ(seen.size(), 1u);
  EXPECT_EQ(bus.type_status("worker", "in_flight"), 0u);
}

TEST(DeferredSettling, ADeliveryReleasedFromAnotherThreadIsRedeliveredFlagged) {
  Bus bus(kJobs);
  Held held;
  Inbox seen;
  auto worker = bus.connect("worker");
  auto web = bus.connect("web");
  ASSERT_TRUE(worker && web);
  worker->on("job.run", [&, keep = held.keeper()](Delivery& d) {
    seen.add(d.message());
    if (!d.message().redelivered()) keep(d);  // the redelivery is acked by returning
  });
  ASSERT_TRUE(worker->start().ok());
  ASSERT_TRUE(web->send("job.run", numbered(1)).ok());
  ASSERT_TRUE(eventually([&] { return held.size() == 1; }));

  held.on_another_thread(0, [](Delivery& d) { EXPECT_TRUE(d.release().ok()); });

  ASSERT_TRUE(eventually([&] { return seen.size() == 2; }));
  EXPECT_TRUE(seen.messages()[1].redelivered());
  EXPECT_EQ(seen.messages()[1].id, seen.messages()[0].id);
}

TEST(DeferredSettling, RenewingAHeldDeliveryKeepsItPastItsAckTimeout) {
  Bus bus(kJobs);
  Held held;
  Inbox seen;
  auto worker = bus.connect("worker");
  auto web = bus.connect("web");
  ASSERT_TRUE(worker && web);
  worker->on("job.run", [&, keep = held.keeper()](Delivery& d) {
    seen.add(d.message());
    keep(d);
  });
  ASSERT_TRUE(worker->start().ok());
  ASSERT_TRUE(web->send("job.run", numbered(1)).ok());
  ASSERT_TRUE(eventually([&] { return held.size() == 1; }));

  // Three times the 300 ms ack timeout, renewed every 100 ms.
  for (int round = 0; round < 9; ++round) {
    std::this_thread::sleep_for(100ms);
    held.on_another_thread(0, [](Delivery& d) { EXPECT_TRUE(d.renew().ok()); });
  }
  EXPECT_EQ(seen.size(), 1u) << "never redelivered while renewed";
  held.on_another_thread(0, [](Delivery& d) { EXPECT_TRUE(d.ack().ok()); });
}

TEST(DeferredSettling, AHeldDeliveryNotRenewedExpiresAndItsLateAckSaysSo) {
  Bus bus(kJobs);
  Held held;
  Inbox seen;
  auto worker = bus.connect("worker");
  auto web = bus.connect("web");
  ASSERT_TRUE(worker && web);
  worker->on("job.run", [&, keep = held.keeper()](Delivery& d) {
    seen.add(d.message());
    if (!d.message().redelivered()) keep(d);
  });
  ASSERT_TRUE(worker->start().ok());
  ASSERT_TRUE(web->send("job.run", numbered(1)).ok());

  ASSERT_TRUE(eventually([&] { return seen.size() == 2; })) << "redelivered after the ack timeout";
  held.on_another_thread(0, [](Delivery& d) {
    const Result<void> late = d.ack();
    ASSERT_FALSE(late.ok());
    EXPECT_EQ(late.error().code, ErrorCode::timeout);
  });
}

TEST(DeferredSettling, HeldDeliveriesCountAgainstThePrefetch) {
  Bus bus(kJobs);
  Held held;
  auto worker = bus.connect("worker");
  auto web = bus.connect("web");
  ASSERT_TRUE(worker && web);
  worker->on("job.run", held.keeper());
  ASSERT_TRUE(worker->start().ok());

  for (unsigned n = 0; n < 3; ++n) ASSERT_TRUE(web->send("job.run", numbered(n)).ok());
  ASSERT_TRUE(eventually([&] { return held.size() == 2; }));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(held.size(), 2u) << "prefetch 2: the third waits in the queue";

  held.on_another_thread(0, [](Delivery& d) { EXPECT_TRUE(d.ack().ok()); });
  EXPECT_TRUE(eventually([&] { return held.size() == 3; }));
  for (std::size_t k = 1; k < 3; ++k) held.on_another_thread(k, [](Delivery& d) { EXPECT_TRUE(d.ack().ok()); });
}

TEST(DeferredSettling, AHeldPayloadReadInPlaceStaysReadableUntilSettled) {
  Bus bus(kJobs);
  Held held;
  ServiceOptions in_place = bus.options("worker");
  in_place.copy_payloads = false;
  auto worker = Service::connect(in_place);
  auto web = bus.connect("web");
  ASSERT_TRUE(worker.ok() && web);
  worker.value()->on("job.run", held.keeper());
  ASSERT_TRUE(worker.value()->start().ok());
  ASSERT_TRUE(web->send("job.run", numbered(42)).ok());
  ASSERT_TRUE(eventually([&] { return held.size() == 1; }));

  held.on_another_thread(0, [](Delivery& d) {
    EXPECT_TRUE(d.message().payload.empty()) << "no copy was made";
    EXPECT_EQ(std::string(d.payload()), numbered(42));
    EXPECT_TRUE(d.payload_intact());
    EXPECT_TRUE(d.ack().ok());
  });
}

TEST(DeferredSettling, ADeliveryDroppedUnsettledIsReleased) {
  Bus bus(kJobs);
  Held held;
  Inbox seen;
  auto worker = bus.connect("worker");
  auto web = bus.connect("web");
  ASSERT_TRUE(worker && web);
  worker->on("job.run", [&, keep = held.keeper()](Delivery& d) {
    seen.add(d.message());
    if (!d.message().redelivered()) keep(d);
  });
  ASSERT_TRUE(worker->start().ok());
  ASSERT_TRUE(web->send("job.run", numbered(1)).ok());
  ASSERT_TRUE(eventually([&] { return held.size() == 1; }));

  held.clear();

  ASSERT_TRUE(eventually([&] { return seen.size() == 2; }, 250ms)) << "released at once, not at the ack timeout";
  EXPECT_TRUE(seen.messages()[1].redelivered());
}

TEST(DeferredSettling, DeliveriesStillHeldWhenTheServiceStopsAreReleasedAndThenClosed) {
  Bus bus(kJobs);
  Held held;
  Inbox second;
  auto first = bus.connect("worker");
  auto web = bus.connect("web");
  ASSERT_TRUE(first && web);
  first->on("job.run", held.keeper());
  ASSERT_TRUE(first->start().ok());
  ASSERT_TRUE(web->send("job.run", numbered(1)).ok());
  ASSERT_TRUE(eventually([&] { return held.size() == 1; }));

  first->stop();
  auto other = bus.connect("worker");
  ASSERT_TRUE(other);
  other->on("job.run", [&](Delivery& d) { second.add(d.message()); });
  ASSERT_TRUE(other->start().ok());

  ASSERT_TRUE(eventually([&] { return second.size() == 1; }));
  EXPECT_TRUE(second.messages()[0].redelivered());
  held.on_another_thread(0, [](Delivery& d) {
    EXPECT_EQ(d.ack().error().code, ErrorCode::closed);
    EXPECT_EQ(d.reply("x").error().code, ErrorCode::closed);
  });
  first.reset();
  held.clear();  // destroying it after its service is gone is safe
}

}  // namespace
}  // namespace exobus::integration
