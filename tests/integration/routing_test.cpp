// Routing between real processes through a real exobusd: a message reaches the service
// types subscribed to its name, once each, is shared between competing instances of one
// type, and waits in its type's queue while no instance runs.
#include <gtest/gtest.h>

#include "bus_fixture.hpp"

namespace exobus::integration {
namespace {

constexpr const char* kShop = R"(
  web:
    config: { sends: [user.created, stats.ping] }
  users:
    config: { receives: [stats.ping] }
  audit:
    config: { receives: [user.created] }
  mailer:
    config: { receives: [user.created] }
)";

// An in-process instance of `type` whose handlers for `names` record into `inbox`.
std::unique_ptr<Service> recording(Bus& bus, const std::string& type, const std::vector<std::string>& names,
                                   Inbox& inbox) {
  std::unique_ptr<Service> service = bus.connect(type);
  if (!service) return nullptr;
  for (const std::string& name : names) service->on(name, [&inbox](Delivery& d) { inbox.add(d.message()); });
  EXPECT_TRUE(service->start().ok());
  return service;
}

std::vector<std::string> names_of(const Inbox& inbox) {
  std::vector<std::string> names;
  for (const Received& message : inbox.messages()) names.push_back(message.name + " " + message.payload);
  return names;
}

TEST(Routing, MessageReachesOnlyTheTypeThatReceivesIt) {
  Bus bus(kShop);
  Inbox users_inbox, audit_inbox, mailer_inbox;
  auto web = bus.connect("web");
  auto users = recording(bus, "users", {"stats.ping", "user.created"}, users_inbox);
  auto audit = recording(bus, "audit", {"stats.ping", "user.created"}, audit_inbox);
  auto mailer = recording(bus, "mailer", {"stats.ping", "user.created"}, mailer_inbox);
  ASSERT_TRUE(web && users && audit && mailer);

  ASSERT_TRUE(web->send("stats.ping", numbered(1)).ok());
  // A later message from the same sender to audit and mailer: had the ping gone to them,
  // it would have arrived first.
  ASSERT_TRUE(web->send("user.created", numbered(2)).ok());

  ASSERT_TRUE(eventually([&] {
    return users_inbox.size() == 1 && audit_inbox.size() >= 1 && mailer_inbox.size() >= 1;
  }));
  EXPECT_EQ(names_of(users_inbox), std::vector<std::string>{"stats.ping {\"n\":1}"});
  EXPECT_EQ(names_of(audit_inbox), std::vector<std::string>{"user.created {\"n\":2}"});
  EXPECT_EQ(names_of(mailer_inbox), std::vector<std::string>{"user.created {\"n\":2}"});
  EXPECT_EQ(users_inbox.messages()[0].sender, "web");
}

TEST(Routing, FanOutDeliversToEverySubscribedTypeOnce) {
  Bus bus(kShop);
  Inbox users_inbox, audit_inbox, mailer_inbox;
  auto web = bus.connect("web");
  auto users = recording(bus, "users", {"stats.ping", "user.created"}, users_inbox);
  auto audit = recording(bus, "audit", {"user.created"}, audit_inbox);
  auto mailer = recording(bus, "mailer", {"user.created"}, mailer_inbox);
  ASSERT_TRUE(web && users && audit && mailer);

  ASSERT_TRUE(web->send("user.created", numbered(1)).ok());
  ASSERT_TRUE(web->send("user.created", numbered(2)).ok());

  ASSERT_TRUE(eventually([&] { return audit_inbox.size() >= 2 && mailer_inbox.size() >= 2; }));
  // A duplicate of the first would sit before the second in the same queue.
  const std::vector<std::string> both{"user.created {\"n\":1}", "user.created {\"n\":2}"};
  EXPECT_EQ(names_of(audit_inbox), both);
  EXPECT_EQ(names_of(mailer_inbox), both);
  EXPECT_EQ(audit_inbox.messages()[0].id, mailer_inbox.messages()[0].id) << "one message, two receivers";
  EXPECT_FALSE(audit_inbox.messages()[0].redelivered());
  EXPECT_EQ(users_inbox.size(), 0u);
}

TEST(Routing, CompetingInstancesOfOneTypeShareTheLoad) {
  constexpr unsigned kMessages = 200;
  Bus bus(kWebToWorker);
  auto first_ledger = std::make_unique<Ledger>(), second_ledger = std::make_unique<Ledger>();
  auto slow_recorder = [](Ledger& ledger) {
    return [&ledger](Delivery& d) {
      ledger.record(d.message());
      std::this_thread::sleep_for(1ms);  // work, so that the other instance gets its turn
    };
  };
  auto web = bus.connect("web");
  auto first = bus.connect("worker");
  auto second = bus.connect("worker");
  ASSERT_TRUE(web && first && second);
  ASSERT_NE(first->instance(), second->instance());
  first->on("job.run", slow_recorder(*first_ledger));
  second->on("job.run", slow_recorder(*second_ledger));
  ASSERT_TRUE(first->start().ok());
  ASSERT_TRUE(second->start().ok());

  for (unsigned n = 0; n < kMessages; ++n) ASSERT_TRUE(web->send("job.run", numbered(n)).ok()) << n;

  ASSERT_TRUE(eventually([&] { return first_ledger->count() + second_ledger->count() >= kMessages; }));
  std::this_thread::sleep_for(100ms);  // room for a duplicate to show
  EXPECT_GT(first_ledger->count(), 0u);
  EXPECT_GT(second_ledger->count(), 0u);
  for (unsigned n = 0; n < kMessages; ++n) {
    EXPECT_EQ(first_ledger->times_of(n) + second_ledger->times_of(n), 1u) << "message " << n;
  }
}

TEST(Routing, MessageSentBeforeAnyInstanceExistsIsDeliveredWhenOneStarts) {
  Bus bus(kWebToWorker);
  auto web = bus.connect("web");
  ASSERT_TRUE(web);
  ASSERT_TRUE(web->send("job.run", numbered(7)).ok());
  ASSERT_TRUE(eventually([&] { return bus.type_status("worker", "queued") == 1; }));

  Inbox inbox;
  auto worker = recording(bus, "worker", {"job.run"}, inbox);
  ASSERT_TRUE(worker);

  ASSERT_TRUE(eventually([&] { return inbox.size() == 1; }));
  EXPECT_EQ(inbox.messages()[0].payload, numbered(7));
  EXPECT_FALSE(inbox.messages()[0].redelivered());
}

TEST(Routing, InstanceHoldsNoMoreUnsettledMessagesThanItsTypesPrefetch) {
  constexpr unsigned kMessages = 10, kPrefetch = 3;
  Bus bus(R"(
    web:
      config: { sends: [job.run] }
    worker:
      config: { receives: [job.run], prefetch: 3 }
  )");  // web keeps the default prefetch (256): the bus's lease tables are sized for it
  auto handled = std::make_unique<Ledger>();
  std::atomic<bool> go{false};
  auto web = bus.connect("web");
  auto worker = bus.connect("worker", 2);
  ASSERT_TRUE(web && worker);
  worker->on("job.run", [&](Delivery& d) {
    while (!go.load()) std::this_thread::sleep_for(1ms);
    handled->record(d.message());
  });
  ASSERT_TRUE(worker->start().ok());

  for (unsigned n = 0; n < kMessages; ++n) ASSERT_TRUE(web->send("job.run", numbered(n)).ok());

  ASSERT_TRUE(eventually([&] { return bus.type_status("worker", "in_flight") == kPrefetch; }));
  std::this_thread::sleep_for(200ms);  // room to take more, which it must not
  EXPECT_EQ(bus.type_status("worker", "in_flight"), kPrefetch);
  EXPECT_EQ(bus.type_status("worker", "queued"), kMessages - kPrefetch);
  go.store(true);
  EXPECT_TRUE(eventually([&] { return handled->distinct(kMessages) == kMessages; }));
}

}  // namespace
}  // namespace exobus::integration
