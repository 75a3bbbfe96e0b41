// Exhaustion of each bounded resource of a real bus: the message pool, a type's queue, an
// instance's lease table (prefetch) and the machine's memory. Each gives a typed error or
// back-pressure, never a crash or a silent drop, and the bus recovers when room returns.
// (A full queue on its own: errors_test.cpp.)
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "bus_fixture.hpp"

namespace exobus::integration {
namespace {

constexpr unsigned kChunks = 8;  // the whole pool: one size class of 8 chunks

constexpr const char* kServices = R"(
  web:
    config: { sends: [job.run] }
  worker:
    config: { receives: [job.run], queue-capacity: 64, prefetch: 4 }
)";

std::string small_pool() { return "size-classes:\n  - { size: 256, count: " + std::to_string(kChunks) + " }\n"; }

// Blocks handlers until opened.
class Gate {
 public:
  void pass() {
    std::unique_lock lock(mutex_);
    opened_.wait(lock, [&] { return open_; });
  }
  void open() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    opened_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable opened_;
  bool open_ = false;
};

TEST(Exhaustion, EmptyPoolRefusesWithPoolExhaustedAndRecoversWhenMessagesAreAcked) {
  Bus bus(kServices, small_pool());
  auto web = bus.connect("web");
  ASSERT_TRUE(web);
  // No worker runs: every message stays queued and holds its chunk.
  for (unsigned n = 0; n < kChunks; ++n) ASSERT_TRUE(web->try_send("job.run", numbered(n)).ok()) << n;

  const Result<void> refused = web->try_send("job.run", numbered(kChunks));

  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::pool_exhausted);
  EXPECT_NE(refused.error().message.find("no free message buffer"), std::string::npos) << refused.error().message;

  // send() waits for room: a worker that starts meanwhile frees chunks by acking.
  Ledger handled;
  std::unique_ptr<Service> worker;
  std::thread late_worker([&] {
    std::this_thread::sleep_for(100ms);
    worker = bus.connect("worker");
    if (!worker) return;
    worker->on("job.run", [&](Delivery& delivery) { handled.record(delivery.message()); });
    EXPECT_TRUE(worker->start().ok());
  });
  const Result<void> waited = web->send("job.run", numbered(kChunks + 1));
  late_worker.join();
  EXPECT_TRUE(waited.ok()) << waited.error().message;

  EXPECT_TRUE(eventually([&] { return handled.distinct(kChunks) == kChunks && handled.saw(kChunks + 1); }));
  EXPECT_FALSE(handled.saw(kChunks)) << "the refused message left no trace";
  EXPECT_TRUE(eventually([&] { return bus.status()["pool"]["in_use"].GetUint64() == 0; }));
}

TEST(Exhaustion, FullLeaseTableStopsTakingAndOtherInstancesServeTheRest) {
  Bus bus(kServices);
  auto web = bus.connect("web");
  ASSERT_TRUE(web);
  constexpr unsigned kPrefetch = 4, kMessages = 20;
  Gate gate;
  Ledger handled;
  auto stuck = bus.connect("worker", /*handler_threads=*/kMessages);  // threads to spare: prefetch bounds it
  ASSERT_TRUE(stuck);
  stuck->on("job.run", [&](Delivery& delivery) {
    handled.record(delivery.message());
    gate.pass();
  });
  ASSERT_TRUE(stuck->start().ok());

  for (unsigned n = 0; n < kMessages; ++n) ASSERT_TRUE(web->send("job.run", numbered(n)).ok());

  ASSERT_TRUE(eventually([&] { return handled.count() == kPrefetch; }));
  std::this_thread::sleep_for(200ms);  // it would have taken more by now if it could
  EXPECT_EQ(handled.count(), kPrefetch);
  EXPECT_EQ(bus.type_status("worker", "in_flight"), kPrefetch);
  EXPECT_EQ(bus.type_status("worker", "queued"), kMessages - kPrefetch);

  auto helper = bus.connect("worker");
  ASSERT_TRUE(helper);
  helper->on("job.run", [&](Delivery& delivery) { handled.record(delivery.message()); });
  ASSERT_TRUE(helper->start().ok());
  EXPECT_TRUE(eventually([&] { return handled.count() == kMessages; }));
  gate.open();
  EXPECT_TRUE(eventually([&] { return bus.type_status("worker", "acked") == kMessages; }));
  EXPECT_EQ(handled.distinct(kMessages), kMessages);
  EXPECT_EQ(handled.count(), kMessages) << "no message was delivered twice";
}

// Runs exobusd until it serves, then stops it; its exit code, or 0 once it answered on its
// socket.
int run_daemon_briefly(Bus& bus) {
  const std::filesystem::path log = bus.runtime_dir().parent_path() / "exobusd.log";  // what daemon_log() reads
  const pid_t daemon = bus.spawn([&] {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd != -1) ::dup2(fd, STDERR_FILENO);
    const std::string config = bus.config_file().string(), runtime = bus.runtime_dir().string();
    const char* argv[] = {EXOBUSD_PATH,    "--config",      config.c_str(),     "--bus", bus.name().c_str(),
                          "--runtime-dir", runtime.c_str(), "--remove-segment", nullptr};
    ::execv(EXOBUSD_PATH, const_cast<char* const*>(argv));
    return 127;
  });
  int status = 0;
  bool exited = false;
  const bool served = eventually([&] {
    exited = ::waitpid(daemon, &status, WNOHANG) == daemon;
    return exited || control::request_status(bus.paths(), 200ms).ok();
  });
  if (exited) return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  ::kill(daemon, SIGTERM);
  status = bus.wait_child(daemon);
  return served ? 0 : 126;
}

TEST(Exhaustion, MemoryTheMachineLacksStopsTheDaemonWithAClearErrorBeforeReservingAny) {
  // 8 TiB of 1 MiB buffers on every link: no test machine has that, and reserving it would
  // not fail cleanly (the kernel would reclaim and kill before giving up).
  Bus bus(kServices, "size-classes:\n  - { size: 1048576, count: 8388608 }\n", /*start=*/false);

  EXPECT_EQ(run_daemon_briefly(bus), 1) << "exobusd should exit 1, neither crash nor serve";
  const std::string log = bus.daemon_log();
  // "the bus's memory needs N MiB and the machine has M MiB available; shrink the size classes and queues"
  const std::size_t needs = log.find("needs "), has = log.find(" MiB and the machine has ");
  ASSERT_TRUE(needs != std::string::npos && has != std::string::npos &&
              log.find(" MiB available; shrink the size classes and queues", has) != std::string::npos)
      << log;
  const std::uint64_t needed = std::strtoull(log.c_str() + needs + 6, nullptr, 10);
  const std::uint64_t available = std::strtoull(log.c_str() + has + 25, nullptr, 10);
  EXPECT_GE(needed, 8ull << 20) << "at least one link's 8 TiB";
  EXPECT_LT(available, needed);
}

TEST(Exhaustion, TheSameConfigurationWithRoomServes) {
  Bus bus(kServices, small_pool(), /*start=*/false);
  EXPECT_EQ(run_daemon_briefly(bus), 0) << bus.daemon_log();
}

}  // namespace
}  // namespace exobus::integration
