// exobus_profile_loop: one process, a short loop of the ExoBus paths the comparison measures,
// for an instruction-level profile (docs/benchmarks.md, "Where the time goes"):
//
//   valgrind --tool=callgrind exobus_profile_loop --payload 64 --messages 20000
//
// Phase 1 sends `messages` JSON-string payloads through the client library to a service type
// nobody has started yet (they wait in its queue); phase 2 starts that service, whose handler
// reads every byte and returns (acks). With --shm it does the same with shm::DataPlane alone
// (allocate, copy, publish; then take, read, ack) on a bus memory of its own, without a daemon. With --round-trips,
// request -> reply round trips through the library, as the exobus-* round-trip rows make them.
// With --types N the library fans each message out to N service types (only one consumes). The bus and its
// exobusd are started here, as the comparison does.

#include <CLI/CLI.hpp>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <thread>

#include "exobus/shm/data_plane.hpp"
#include "exobus_daemon.hpp"
#include "scratch_bus.hpp"
#include "transport.hpp"
#include "workloads.hpp"

using namespace exobus;
using namespace exobus::bench;

namespace {

int run_library(std::size_t payload, std::size_t messages, int types) {
  RunBus bus;
  std::string yml = "name: bench\nbus:\n  max-instances: 8\n  size-classes:\n" + size_classes_yaml(payload, 65536) +
                    "services:\n  bench-sender:\n    config:\n      sends: [bench.msg]\n"
                    "  bench-receiver:\n    config:\n      receives: [bench.msg]\n"
                    "      queue-capacity: 65536\n      prefetch: 256\n";
  // Further receiving types (never started) only make the sender fan out.
  for (int t = 1; t < types; ++t)
    yml += "  bench-extra" + std::to_string(t) +
           ":\n    config:\n      receives: [bench.msg]\n      queue-capacity: 65536\n";
  bus.start("profile-" + std::to_string(::getpid()), yml);
  auto sender = bus.connect("bench-sender", WaitMode::sleep);
  auto receiver = bus.connect("bench-receiver", WaitMode::sleep);
  std::string buf(payload, 'a');
  buf.front() = buf.back() = '"';
  for (std::size_t i = 0; i < messages; ++i) {
    std::snprintf(&buf[1], 17, "%016zx", i);
    buf[17] = 'a';  // snprintf's NUL
    if (Result<void> sent = sender->send("bench.msg", buf); !sent) {
      std::fprintf(stderr, "send: %s\n", sent.error().message.c_str());
      return 1;
    }
  }
  std::atomic<std::size_t> handled{0};
  std::uint64_t sum = 0;
  receiver->on("bench.msg", [&](Delivery& d) {
    const std::string& p = d.message().payload;
    sum += digest({reinterpret_cast<const std::byte*>(p.data()), p.size()});
    handled.fetch_add(1, std::memory_order_release);
  });
  if (!receiver->start()) return 1;
  while (handled.load(std::memory_order_acquire) < messages) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  receiver->stop();
  sender->stop();
  std::printf("library: %zu messages of %zu B sent and handled (checksum %llu)\n", messages, payload,
              static_cast<unsigned long long>(sum));
  return 0;
}

// Round trips: `messages` requests, each sent from the previous reply's handler, answered by
// an echoing handler.
int run_round_trips(std::size_t payload, std::size_t messages) {
  RunBus bus;
  bus.start("profile-" + std::to_string(::getpid()),
            "name: bench\nbus:\n  max-instances: 8\n  size-classes:\n" + size_classes_yaml(payload, 65536) +
                "services:\n  bench-sender:\n    config:\n      sends: [bench.ping]\n      receives: [bench.pong]\n"
                "  bench-receiver:\n    config:\n      receives: [bench.ping]\n      sends: [bench.pong]\n");
  auto client = bus.connect("bench-sender", WaitMode::adaptive);
  auto server = bus.connect("bench-receiver", WaitMode::adaptive);
  server->on("bench.ping", [](Delivery& d) { (void)d.reply("bench.pong", d.message().payload); });
  if (!server->start()) return 1;
  std::string buf(payload, 'a');
  buf.front() = buf.back() = '"';
  std::atomic<std::size_t> replies{0};
  std::function<void()> send_next;
  const ReplyHandler on_reply = [&](const Reply&) {
    if (replies.fetch_add(1, std::memory_order_acq_rel) + 1 < messages) send_next();
    return ReplyControl::done;
  };
  send_next = [&] { (void)client->send("bench.ping", buf, on_reply, std::chrono::seconds(60)); };
  send_next();
  while (replies.load(std::memory_order_acquire) < messages) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  server->stop();
  client->stop();
  std::printf("library: %zu round trips of %zu B\n", messages, payload);
  return 0;
}

// The data plane alone, in one process: the sender type's instance 0 sends on link 0's
// type channel, the receiver type's instance 0 takes and acknowledges, on a scratch bus's
// memory (tests/support/scratch_bus.hpp) with one size class for the payload and a
// channel deep enough for every message.
int run_shm(std::size_t payload, std::size_t messages) {
  using namespace exobus::shm::testing;
  std::uint32_t size = shm::kMinChunkSize;
  while (size < payload) size *= 2;
  ScratchOptions options;
  options.channel_capacity = 65536;
  options.reply_capacity = 2;
  options.instances = 1;
  options.lanes_per_instance = shm::kFirstSendLane + 1;
  options.leases_per_lane = 256;
  options.size_classes = {{size, 65536}};
  ScratchBus bus(options, "bench-profile");
  shm::DataPlane sender = bus.plane(kSenderType, 0);
  shm::DataPlane receiver = bus.plane(kReceiverType, 0);
  shm::Link& link = bus.link(kCommandLink);
  shm::LaneCursor out{sender.lane(shm::kFirstSendLane)}, in{receiver.lane(shm::kCommandLane)};
  std::vector<std::byte> filler(payload, std::byte{7});
  for (std::size_t i = 0; i < messages; ++i) {
    const shm::Allocation a = sender.allocate(link, payload);
    if (a.status != shm::PoolStatus::ok) return 1;
    std::memcpy(a.buffer.data(), filler.data(), payload);
    const shm::Part part{{&link, shm::kTypeChannel}, a.handle, static_cast<std::uint32_t>(payload)};
    if (sender.publish(out, std::span(&part, 1)).status != shm::SendStatus::ok) return 1;
  }
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < messages; ++i) {
    const shm::TakeOutcome t = receiver.take(in, link, link.type_channel(), shm::DataPlane::now_ms());
    if (t.status != shm::TakeOutcomeStatus::ok) return 1;
    sum += digest(t.delivery.payload);
    receiver.ack(t.delivery.lease);
  }
  std::printf("shm: %zu messages of %zu B sent and taken (checksum %llu)\n", messages, payload,
              static_cast<unsigned long long>(sum));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"A short single-process loop of ExoBus's send and receive paths, for profiling"};
  std::size_t payload = 64, messages = 20'000;
  bool shm_only = false, round_trips = false;
  int types = 1;
  app.add_option("--payload", payload, "payload bytes (at least 36)");
  app.add_option("--messages", messages, "messages to send, then receive (at most 60000)");
  app.add_flag("--shm", shm_only, "shm::DataPlane alone, without the client library");
  app.add_option("--types", types, "receiving service types the library fans out to (1 to 4)");
  app.add_flag("--round-trips", round_trips, "request -> reply round trips through the client library");
  CLI11_PARSE(app, argc, argv);
  if (payload < 36 || messages > 60'000) return 2;
  try {
    if (round_trips) return run_round_trips(payload, messages);
    return shm_only ? run_shm(payload, messages) : run_library(payload, messages, types);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
