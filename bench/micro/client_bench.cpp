// The client library's fast path in one process: two real Services on a test bus (the same
// routing, checks and data plane as a running bus, without a daemon), a sender streaming
// 64-byte JSON strings and a receiver whose handler, on its own busy-polling thread, counts
// them. One iteration is one message sent; the run ends when the receiver has handled and
// acked every one, so the rate is that of the slower side. Every message is routed, checked
// as JSON, identified, decoded, checked against its sender's `sends` and acked: the paths of
// a send's last route, a source's last verdict and the reused inline delivery.
//
// The round trips: the sender asks, the receiver answers 64 bytes; one iteration is one
// request and its reply, waited for by call() (the caller takes its reply) or by request()
// (the reply thread takes it and hands it to the future).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "bench_support.hpp"
#include "exobus/test_bus.hpp"

namespace exobus::shm::bench {
namespace {

constexpr const char* kApplication =
    "name: client-bench\n"
    "bus:\n"
    "  max-instances: 4\n"
    "  size-classes:\n"
    "    - { size: 256, count: 4096 }\n"
    "services:\n"
    "  sender:\n"
    "    config:\n"
    "      sends: [bench.msg, bench.ping]\n"
    "      receives: [bench.pong]\n"
    "  receiver:\n"
    "    config:\n"
    "      receives: [bench.msg, bench.ping]\n"
    "      sends: [bench.pong]\n"
    "      queue-capacity: 4096\n"
    "      prefetch: 256\n";

// The application file in a directory of its own, removed afterwards.
class ApplicationFile {
 public:
  ApplicationFile() {
    char pattern[] = "/tmp/exobus-client-bench-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) throw std::runtime_error("mkdtemp failed");
    directory_ = pattern;
    std::ofstream(directory_ / "application.yml") << kApplication;
  }
  ~ApplicationFile() { std::filesystem::remove_all(directory_); }
  std::filesystem::path path() const { return directory_ / "application.yml"; }

 private:
  std::filesystem::path directory_;
};

void BM_ServiceSendReceive(benchmark::State& state) {
  const ApplicationFile application;
  Result<std::unique_ptr<TestBus>> bus = TestBus::create(application.path());
  if (!bus) return fail(state, "test bus: " + bus.error().message);
  ServiceOptions receiving;
  receiving.service = "receiver";
  receiving.wait_mode = WaitMode::busy_poll;
  receiving.copy_payloads = false;  // the handler reads the payload in place
  Result<std::unique_ptr<Service>> receiver = bus.value()->connect(receiving);
  if (!receiver) return fail(state, "receiver: " + receiver.error().message);
  std::atomic<std::uint64_t> handled{0};
  receiver.value()->on("bench.msg", [&](exobus::Delivery& delivery) {
    benchmark::DoNotOptimize(delivery.payload().data());
    handled.store(handled.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  });
  if (Result<void> started = receiver.value()->start(); !started) {
    return fail(state, "receiver: " + started.error().message);
  }
  Result<std::unique_ptr<Service>> sender = bus.value()->connect("sender");
  if (!sender) return fail(state, "sender: " + sender.error().message);

  std::string payload(64, 'a');
  payload.front() = payload.back() = '"';
  std::uint64_t sent = 0;
  for (auto _ : state) {
    payload[1] = static_cast<char>('a' + sent % 26);
    if (Result<void> done = sender.value()->send("bench.msg", payload); !done) {
      receiver.value()->stop();
      return fail(state, "send: " + done.error().message);
    }
    ++sent;
  }
  while (handled.load(std::memory_order_acquire) < sent) std::this_thread::yield();
  state.SetItemsProcessed(static_cast<std::int64_t>(sent));
  sender.value().reset();
  receiver.value()->stop();
}
BENCHMARK(BM_ServiceSendReceive)->UseRealTime();

template <typename RoundTrip>
void round_trips(benchmark::State& state, RoundTrip round_trip) {
  const ApplicationFile application;
  Result<std::unique_ptr<TestBus>> bus = TestBus::create(application.path());
  if (!bus) return fail(state, "test bus: " + bus.error().message);
  ServiceOptions options;
  options.service = "receiver";
  options.wait_mode = WaitMode::busy_poll;
  Result<std::unique_ptr<Service>> receiver = bus.value()->connect(options);
  if (!receiver) return fail(state, "receiver: " + receiver.error().message);
  receiver.value()->on(
      "bench.ping", [](exobus::Delivery& delivery) { (void)delivery.reply("bench.pong", delivery.message().payload); });
  if (Result<void> started = receiver.value()->start(); !started) {
    return fail(state, "receiver: " + started.error().message);
  }
  options.service = "sender";
  Result<std::unique_ptr<Service>> sender = bus.value()->connect(options);
  if (!sender) return fail(state, "sender: " + sender.error().message);
  std::string payload(64, 'a');
  payload.front() = payload.back() = '"';
  for (auto _ : state) {
    if (Result<Reply> reply = round_trip(*sender.value(), payload); !reply) {
      receiver.value()->stop();
      return fail(state, "round trip: " + reply.error().message);
    }
  }
  state.SetItemsProcessed(state.iterations());
  sender.value()->stop();
  receiver.value()->stop();
}

void BM_ServiceCall(benchmark::State& state) {
  round_trips(state, [](Service& sender, const std::string& payload) {
    return sender.call("bench.ping", payload, std::chrono::seconds(10));
  });
}
BENCHMARK(BM_ServiceCall)->UseRealTime();

void BM_ServiceRequestFuture(benchmark::State& state) {
  round_trips(state, [](Service& sender, const std::string& payload) {
    return sender.request("bench.ping", payload, std::chrono::seconds(10)).get();
  });
}
BENCHMARK(BM_ServiceRequestFuture)->UseRealTime();

}  // namespace
}  // namespace exobus::shm::bench
