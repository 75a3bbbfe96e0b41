// Real processes killed with SIGKILL or stopped with SIGSTOP around a real exobusd: what a
// dead or stalled consumer held goes to another instance, marked redelivered; a poison
// message ends in the dead-letter queue; a dead sender wedges nobody; and the daemon's own
// death stops neither traffic nor, after its restart, recovery.
#include <gtest/gtest.h>

#include "bus_fixture.hpp"
#include "exobus/shm/fault_point.hpp"

namespace exobus::integration {
namespace {

// A one-way switch from the test to a child process, and the child's answers.
struct Gate {
  std::atomic<int> open{0};
  std::atomic<int> late_ack{-1};  // the ErrorCode of the stopped child's own ack, 0 if it was accepted
};

std::unique_ptr<Service> recording_worker(Bus& bus, Ledger& ledger) {
  std::unique_ptr<Service> worker = bus.connect("worker");
  if (!worker) return nullptr;
  worker->on("job.run", [&ledger](Delivery& d) { ledger.record(d.message()); });
  EXPECT_TRUE(worker->start().ok());
  return worker;
}

bool alive(pid_t pid) { return ::waitpid(pid, nullptr, WNOHANG) == 0; }

// A "worker" instance whose handlers record each job.run and then never settle it, so it
// holds every message it takes until it is killed.
pid_t spawn_stuck_worker(Bus& bus, Ledger& ledger, unsigned handler_threads) {
  return bus.spawn_service("worker", ledger, [&ledger](Service& service) {
    service.on("job.run", [&ledger](Delivery& d) {
      ledger.record(d.message());
      for (;;) ::pause();  // never settles
    });
  }, handler_threads);
}

TEST(Crash, EveryMessageLeasedByAKilledConsumerIsRedeliveredToAnotherInstance) {
  constexpr unsigned kMessages = 8, kPrefetch = 4, kHandlerThreads = 2;
  Bus bus(R"(
    web:
      config: { sends: [job.run] }
    worker:
      config: { receives: [job.run], prefetch: 4 }
  )");
  Shared<Ledger> doomed;
  const pid_t stuck = spawn_stuck_worker(bus, *doomed, kHandlerThreads);
  ASSERT_TRUE(Bus::ready(*doomed));
  auto web = bus.connect("web");
  ASSERT_TRUE(web);
  for (unsigned n = 0; n < kMessages; ++n) ASSERT_TRUE(web->send("job.run", numbered(n)).ok());
  // Both handler threads block, and the stuck instance holds its whole prefetch.
  ASSERT_TRUE(eventually([&] {
    return doomed->count() == kHandlerThreads && bus.type_status("worker", "in_flight") == kPrefetch;
  }));
  auto survivor_ledger = std::make_unique<Ledger>();
  auto survivor = recording_worker(bus, *survivor_ledger);
  ASSERT_TRUE(survivor);
  ASSERT_TRUE(eventually([&] { return survivor_ledger->count() == kMessages - kPrefetch; }));

  bus.kill_child(stuck);

  ASSERT_TRUE(eventually([&] { return survivor_ledger->distinct(kMessages) == kMessages; }));
  unsigned redelivered = 0;
  for (unsigned n = 0; n < kMessages; ++n) {
    redelivered += survivor_ledger->redelivered_of(n) > 0;
    if (doomed->saw(n)) {
      EXPECT_EQ(survivor_ledger->redelivered_of(n), 1u) << "message " << n << " was in a stuck handler";
    }
  }
  EXPECT_EQ(redelivered, kPrefetch) << "every lease of the killed instance, handled or still queued in it";
}

TEST(Crash, MessageOfAConsumerStoppedPastItsLeaseGoesToAnotherInstanceAndTheLateAckIsHarmless) {
  Bus bus(R"(
    web:
      config: { sends: [job.run] }
    worker:
      config: { receives: [job.run], ack-timeout-ms: 300 }
  )");
  Shared<Ledger> stalled;
  Shared<Gate> gate;
  const pid_t sleeper = bus.spawn_service("worker", *stalled, [&](Service&  service) {
    service.on("job.run", [&](Delivery& d) {
      stalled->record(d.message());
      if (number_of(d.message().payload) != 1) return;
      while (!gate->open.load()) std::this_thread::sleep_for(1ms);
      const Result<void> acked = d.ack();
      gate->late_ack.store(acked.ok() ? 0 : static_cast<int>(acked.error().code));
    });
  });
  ASSERT_TRUE(Bus::ready(*stalled));
  auto web = bus.connect("web");
  ASSERT_TRUE(web);
  ASSERT_TRUE(web->send("job.run", numbered(1)).ok());
  ASSERT_TRUE(eventually([&] { return stalled->saw(1); }));

  ::kill(sleeper, SIGSTOP);
  auto other_ledger = std::make_unique<Ledger>();
  auto other = recording_worker(bus, *other_ledger);
  ASSERT_TRUE(other);
  ASSERT_TRUE(eventually([&] { return other_ledger->saw(1); }));
  EXPECT_EQ(other_ledger->redelivered_of(1), 1u);
  gate->open.store(1);
  ::kill(sleeper, SIGCONT);

  ASSERT_TRUE(eventually([&] { return gate->late_ack.load() != -1; }));
  EXPECT_EQ(gate->late_ack.load(), static_cast<int>(ErrorCode::timeout)) << "the late ack is refused as late";
  for (unsigned n = 2; n < 12; ++n) ASSERT_TRUE(web->send("job.run", numbered(n)).ok());
  EXPECT_TRUE(eventually([&] {
    for (unsigned n = 2; n < 12; ++n) {
      if (!stalled->saw(n) && !other_ledger->saw(n)) return false;
    }
    return true;
  })) << "the bus keeps working after the late ack";
  EXPECT_TRUE(alive(sleeper));
  EXPECT_TRUE(alive(bus.daemon_pid()));
  EXPECT_EQ(other_ledger->times_of(1), 1u);
  EXPECT_EQ(bus.type_status("worker", "dead_lettered"), 0u);
}

// Whether `child` has stopped (reaps the stop notification, not the child).
bool stopped(pid_t child) {
  int status = 0;
  return ::waitpid(child, &status, WUNTRACED | WNOHANG) == child && WIFSTOPPED(status);
}

// The same stop, but between taking a message and reading it. When the consumer runs again
// its lease is lost, the message was handled elsewhere, and its memory (the bus's only
// chunk) holds the next message. The consumer must drop what it reads there: the next
// message reaches the other instance once, not the woken consumer as a fresh delivery too.
TEST(Crash, ConsumerStoppedBeforeReadingDropsTheReusedMemoryItWakesUpTo) {
  Bus bus(R"(
    web:
      config: { sends: [job.run] }
    worker:
      config: { receives: [job.run], ack-timeout-ms: 200 }
  )", "size-classes:\n  - { size: 256, count: 1 }\n");
  Shared<Ledger> woken;
  const pid_t sleeper = bus.spawn_service("worker", *woken, [&](Service& service) {
    service.on("job.run", [&](Delivery& d) { woken->record(d.message()); });
    shm::arm_fault(shm::FaultPoint::delivery_taken, 1, shm::FaultAction::stop_process);
  });
  ASSERT_TRUE(Bus::ready(*woken));
  auto web = bus.connect("web");
  ASSERT_TRUE(web);
  ASSERT_TRUE(web->send("job.run", numbered(1)).ok());
  ASSERT_TRUE(eventually([&] { return stopped(sleeper); })) << "the worker took message 1 and stopped";
  ASSERT_EQ(woken->count(), 0u) << "stopped before reading message 1";

  auto other_ledger = std::make_unique<Ledger>();
  auto other = recording_worker(bus, *other_ledger);
  ASSERT_TRUE(other);
  ASSERT_TRUE(eventually([&] { return other_ledger->saw(1); }));
  EXPECT_EQ(other_ledger->redelivered_of(1), 1u);
  ASSERT_TRUE(web->send("job.run", numbered(2)).ok());  // into the chunk message 1 left
  ASSERT_TRUE(eventually([&] { return other_ledger->saw(2); }));

  ::kill(sleeper, SIGCONT);
  // Until the woken worker handles a message, so it is past the one it woke up to.
  unsigned next = 3;
  ASSERT_TRUE(eventually([&] {
    (void)web->try_send("job.run", numbered(next++));
    return woken->count() > 0;
  }));
  EXPECT_FALSE(woken->saw(1)) << "message 1, already handled elsewhere";
  // What it woke up to was another message's bytes (2, or a later one written there since):
  // had it handled them, that message would have reached the workers twice unflagged.
  for (unsigned n = 1; n < next; ++n) {
    const std::uint32_t first_deliveries = woken->times_of(n) - woken->redelivered_of(n) +
                                           other_ledger->times_of(n) - other_ledger->redelivered_of(n);
    EXPECT_LE(first_deliveries, 1u) << "message " << n << " delivered twice unflagged";
  }
  EXPECT_EQ(bus.type_status("worker", "dead_lettered"), 0u);
}

TEST(Crash, MessageThatAlwaysCrashesItsHandlerIsDeadLetteredWhileOthersFlow) {
  constexpr unsigned kPoison = 666, kMessages = 50, kDeliveryLimit = 3;
  Bus bus(R"(
    web:
      config: { sends: [job.run] }
    worker:
      config: { receives: [job.run], delivery-limit: 3 }
  )");
  auto handled = std::make_unique<Ledger>();
  auto worker = bus.connect("worker");
  auto web = bus.connect("web");
  ASSERT_TRUE(worker && web);
  worker->on("job.run", [&](Delivery& d) {
    handled->record(d.message());
    if (number_of(d.message().payload) == kPoison) throw std::runtime_error("cannot handle this one");
  });
  ASSERT_TRUE(worker->start().ok());

  for (unsigned n = 0; n < kMessages; ++n) {
    ASSERT_TRUE(web->send("job.run", numbered(n)).ok());
    if (n == 10) {
      ASSERT_TRUE(web->send("job.run", numbered(kPoison)).ok());
    }
  }

  ASSERT_TRUE(eventually([&] { return bus.type_status("worker", "dead_lettered") == 1; }));
  EXPECT_TRUE(eventually([&] { return handled->distinct(kMessages) == kMessages; }));
  EXPECT_EQ(handled->times_of(kPoison), kDeliveryLimit);
  const rapidjson::Document dead = bus.dead_letters("worker");
  ASSERT_TRUE(dead.IsObject() && dead.HasMember("messages"));
  ASSERT_EQ(dead["messages"].Size(), 1u);
  EXPECT_EQ(std::string(dead["messages"][0]["payload"].GetString()), numbered(kPoison));
  EXPECT_EQ(std::string(dead["messages"][0]["sender"].GetString()), "web");
}

TEST(Crash, SenderKilledMidBurstWedgesNoConsumer) {
  constexpr unsigned kLater = 3500, kLaterCount = 50;
  Bus bus(kWebToWorker);
  Shared<Ledger> sent;
  const ServiceOptions web_options = bus.options("web");
  const pid_t burst = bus.spawn([&] {
    auto web = Service::connect(web_options);
    if (!web) return 2;
    sent->ready.store(1);
    for (unsigned n = 0; n < kLater; ++n) {
      if (web.value()->send("job.run", numbered(n)).ok()) sent->record(n);
      std::this_thread::sleep_for(20us);  // a burst that lasts long enough to be cut short
    }
    return 0;
  });
  auto handled = std::make_unique<Ledger>();
  auto worker = recording_worker(bus, *handled);  // after the fork (see Bus::spawn)
  ASSERT_TRUE(worker);
  ASSERT_TRUE(eventually([&] { return sent->count() >= 300; }));

  bus.kill_child(burst);
  ASSERT_LT(sent->count(), kLater) << "the sender died mid-burst";

  auto web = bus.connect("web");
  ASSERT_TRUE(web);
  for (unsigned n = kLater; n < kLater + kLaterCount; ++n) ASSERT_TRUE(web->send("job.run", numbered(n)).ok());
  EXPECT_TRUE(eventually([&] {
    for (unsigned n = kLater; n < kLater + kLaterCount; ++n) {
      if (!handled->saw(n)) return false;
    }
    return true;
  })) << "messages of another sender still arrive";
  EXPECT_TRUE(eventually([&] {
    for (unsigned n = 0; n < kLater; ++n) {
      if (sent->saw(n) && !handled->saw(n)) return false;
    }
    return true;
  })) << "every send the killed sender saw succeed was delivered";
}

TEST(Crash, TrafficContinuesWhileTheDaemonIsDeadAndARestartedDaemonReattachesLosingNothing) {
  Bus bus(kWebToWorker);
  Shared<Ledger> sent;
  Shared<Gate> stop;
  const ServiceOptions web_options = bus.options("web");
  const pid_t sender = bus.spawn([&] {
    auto web = Service::connect(web_options);
    if (!web) return 2;
    for (unsigned n = 0; n < Ledger::kCapacity - 1 && !stop->open.load(); ++n) {
      if (web.value()->send("job.run", numbered(n)).ok()) sent->record(n);
      std::this_thread::sleep_for(500us);
    }
    return 0;
  });
  auto handled = std::make_unique<Ledger>();
  auto worker = recording_worker(bus, *handled);  // after the fork (see Bus::spawn)
  ASSERT_TRUE(worker);
  ASSERT_TRUE(eventually([&] { return sent->count() >= 200; }));

  bus.kill_daemon();
  const unsigned at_kill = sent->count();
  EXPECT_TRUE(eventually([&] {
    for (unsigned n = at_kill + 1; n < Ledger::kCapacity - 1; ++n) {
      if (handled->saw(n) && n >= at_kill + 200) return true;
    }
    return false;
  })) << "messages flow while the daemon is dead";
  bus.start_daemon();
  EXPECT_NE(bus.daemon_log().find("re-attached to the bus's memory"), std::string::npos) << "the same memory, not a new one";
  const unsigned at_restart = sent->count();
  ASSERT_TRUE(eventually([&] { return sent->count() >= at_restart + 200; }));
  auto late_worker = recording_worker(bus, *handled);  // registration works again
  ASSERT_TRUE(late_worker);
  stop->open.store(1);
  const int status = bus.wait_child(sender);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "sender status " << status;

  const unsigned sent_ok = sent->count();
  EXPECT_TRUE(eventually([&] {
    unsigned received = 0;
    for (unsigned n = 0; n < Ledger::kCapacity - 1; ++n) received += sent->saw(n) && handled->saw(n);
    return received == sent_ok;
  })) << sent_ok << " sent, " << handled->count() << " received";
  EXPECT_TRUE(eventually([&] {
    const rapidjson::Document status = bus.status();
    if (!status.IsObject()) return false;
    for (const auto& type : status["service_types"].GetArray()) {
      for (const auto& instance : type["instances"].GetArray()) {
        if (!instance["connected"].GetBool()) return false;
      }
    }
    return true;
  })) << "the surviving instances reconnected to the new daemon";
}

TEST(Crash, LeasesOfAConsumerKilledWhileTheDaemonIsDeadAreRedeliveredByTheRestartedDaemon) {
  constexpr unsigned kMessages = 2;
  Bus bus(kWebToWorker);
  Shared<Ledger> doomed;
  const pid_t stuck = spawn_stuck_worker(bus, *doomed, kMessages);
  ASSERT_TRUE(Bus::ready(*doomed));
  auto web = bus.connect("web");
  ASSERT_TRUE(web);
  for (unsigned n = 0; n < kMessages; ++n) ASSERT_TRUE(web->send("job.run", numbered(n)).ok());
  ASSERT_TRUE(eventually([&] { return doomed->count() == kMessages; }));
  auto survivor_ledger = std::make_unique<Ledger>();
  auto survivor = recording_worker(bus, *survivor_ledger);
  ASSERT_TRUE(survivor);

  bus.kill_daemon();
  bus.kill_child(stuck);
  bus.start_daemon();

  ASSERT_TRUE(eventually([&] { return survivor_ledger->distinct(kMessages) == kMessages; }));
  for (unsigned n = 0; n < kMessages; ++n) EXPECT_EQ(survivor_ledger->redelivered_of(n), 1u) << "message " << n;
}

TEST(Crash, AKilledKeeperIsReplacedAndTheNextDaemonStillFindsTheQueuedMessages) {
  constexpr unsigned kMessages = 50;
  Bus bus(kWebToWorker);
  auto web = bus.connect("web");
  ASSERT_TRUE(web);
  for (unsigned n = 0; n < kMessages; ++n) ASSERT_TRUE(web->send("job.run", numbered(n)).ok());
  const pid_t first_keeper = bus.keeper_pid();
  ASSERT_GT(first_keeper, 0) << "exobusd keeps its memory in another process";

  ::kill(first_keeper, SIGKILL);
  ASSERT_TRUE(eventually([&] { return bus.daemon_log().find("handed the memory to a new one") != std::string::npos; }))
      << "the daemon starts a new keeper and hands it the memory";
  const pid_t second_keeper = bus.keeper_pid();
  EXPECT_GT(second_keeper, 0);
  EXPECT_NE(second_keeper, first_keeper);
  bus.kill_daemon();
  bus.start_daemon();

  EXPECT_NE(bus.daemon_log().find("re-attached to the bus's memory"), std::string::npos) << "the same memory";
  auto handled = std::make_unique<Ledger>();
  auto worker = recording_worker(bus, *handled);
  ASSERT_TRUE(worker);
  EXPECT_TRUE(eventually([&] { return handled->distinct(kMessages) == kMessages; }))
      << handled->count() << " of " << kMessages << " queued messages arrived";
}

TEST(Crash, WhenDaemonAndKeeperDieTogetherRunningInstancesSayTheyMustRestartAndNewOnesWork) {
  Bus bus(kWebToWorker);
  const std::filesystem::path errors = bus.runtime_dir().parent_path() / "old-worker.err";
  const ServiceOptions worker_options = bus.options("worker");
  Shared<Ledger> ready;
  bus.spawn([&] {
    const int fd = ::open(errors.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd == -1 || ::dup2(fd, STDERR_FILENO) == -1) return 2;
    auto worker = Service::connect(worker_options);
    if (!worker || !worker.value()->start()) return 3;
    ready->ready.store(1, std::memory_order_release);
    for (;;) ::pause();
  });
  ASSERT_TRUE(Bus::ready(*ready));

  const pid_t keeper = bus.keeper_pid();
  ASSERT_GT(keeper, 0);
  bus.kill_daemon();
  ::kill(keeper, SIGKILL);
  ASSERT_TRUE(eventually([&] { return bus.keeper_pid() == -1; }));
  bus.start_daemon();

  EXPECT_NE(bus.daemon_log().find("created the bus's memory"), std::string::npos) << "nothing was left to re-attach to";
  EXPECT_TRUE(eventually([&] {
    std::ifstream file(errors);
    const std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    return text.find("restarted with new memory") != std::string::npos && text.find("restart it") != std::string::npos;
  })) << "the instance on the lost memory says so instead of working on as if registered";
  auto handled = std::make_unique<Ledger>();
  auto worker = recording_worker(bus, *handled);
  auto web = bus.connect("web");
  ASSERT_TRUE(worker && web);
  ASSERT_TRUE(web->send("job.run", numbered(1)).ok());
  EXPECT_TRUE(eventually([&] { return handled->saw(1); })) << "services started on the new memory talk";
}

}  // namespace
}  // namespace exobus::integration
