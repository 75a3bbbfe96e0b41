// Cross-host figures, each a measurement printed as one line (run_bridge_bench.sh starts the
// hosts, the cluster and the services):
//   bridge_bench bus-round-trip COUNT      as $EXOBUS_SERVICE (web), COUNT quote.ask requests
//       one after the other, each answered by pricing on the other host (through both
//       bridges and JetStream): round-trip percentiles
//   bridge_bench bus-throughput COUNT      COUNT requests at once, all answered: requests per
//       second, both ways across
//   bridge_bench nats-round-trip URL COUNT core NATS request/reply alone (libnats, a
//       responder in this process on its own connection): round-trip percentiles
#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <string>
#include <vector>

#include "exobus/service.hpp"

namespace {

using Clock = std::chrono::steady_clock;

int fail(const std::string& what) {
  std::cerr << "bridge_bench: " << what << '\n';
  return 1;
}

void print_percentiles(const char* what, std::vector<double>& micros) {
  std::sort(micros.begin(), micros.end());
  const auto at = [&](double q) {
    return micros[static_cast<std::size_t>(q * static_cast<double>(micros.size() - 1))];
  };
  std::printf("%s: %zu round trips, p50 %.0f us, p90 %.0f us, p99 %.0f us\n", what, micros.size(), at(0.5), at(0.9),
              at(0.99));
}

int bus_round_trip(long count) {
  auto connected = exobus::Service::connect({});
  if (!connected) return fail(connected.error().message);
  exobus::Service& web = *connected.value();
  std::vector<double> micros;
  for (long i = 0; i < count; ++i) {
    const std::string payload = "{\"seq\":" + std::to_string(i) + ",\"parts\":0}";
    const auto started = Clock::now();
    auto reply = web.request("quote.ask", payload, std::chrono::seconds(30)).get();
    if (!reply) return fail("request " + std::to_string(i) + ": " + reply.error().message);
    micros.push_back(std::chrono::duration<double, std::micro>(Clock::now() - started).count());
  }
  print_percentiles("exobus across hosts (bridge, JetStream R3, bridge)", micros);
  web.stop();
  return 0;
}

int bus_throughput(long count) {
  auto connected = exobus::Service::connect({});
  if (!connected) return fail(connected.error().message);
  exobus::Service& web = *connected.value();
  std::mutex mutex;
  std::condition_variable changed;
  long answered = 0;
  const auto started = Clock::now();
  for (long i = 0; i < count; ++i) {
    const std::string payload = "{\"seq\":" + std::to_string(i) + ",\"parts\":0}";
    auto sent = web.send(
        "quote.ask", payload,
        [&](const exobus::Reply& reply) {
          std::lock_guard lock(mutex);
          if (!reply.timed_out) ++answered;
          changed.notify_all();
          return exobus::ReplyControl::done;
        },
        std::chrono::seconds(120));
    if (!sent) return fail("send: " + sent.error().message);
  }
  std::unique_lock lock(mutex);
  changed.wait(lock, [&] { return answered == count; });
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  std::printf("exobus across hosts: %ld requests answered in %.2f s, %.0f requests/s\n", count, seconds,
              static_cast<double>(count) / seconds);
  lock.unlock();
  web.stop();
  return 0;
}

void echo(natsConnection* connection, natsSubscription*, natsMsg* message, void*) {
  natsConnection_Publish(connection, natsMsg_GetReply(message), natsMsg_GetData(message),
                         natsMsg_GetDataLength(message));
  natsMsg_Destroy(message);
}

int nats_round_trip(const std::string& url, long count) {
  natsConnection* responder = nullptr;
  natsConnection* requester = nullptr;
  natsSubscription* subscription = nullptr;
  if (natsConnection_ConnectTo(&responder, url.c_str()) != NATS_OK ||
      natsConnection_ConnectTo(&requester, url.c_str()) != NATS_OK) {
    return fail("cannot connect to " + url);
  }
  natsConnection_Subscribe(&subscription, responder, "bench.echo", echo, nullptr);
  natsConnection_Flush(responder);
  std::vector<double> micros;
  for (long i = 0; i < count; ++i) {
    const std::string payload = "{\"seq\":" + std::to_string(i) + ",\"parts\":0}";
    natsMsg* reply = nullptr;
    const auto started = Clock::now();
    if (natsConnection_Request(&reply, requester, "bench.echo", payload.data(), static_cast<int>(payload.size()),
                               5000) != NATS_OK) {
      return fail("NATS request failed");
    }
    micros.push_back(std::chrono::duration<double, std::micro>(Clock::now() - started).count());
    natsMsg_Destroy(reply);
  }
  print_percentiles("core NATS request/reply alone (libnats)", micros);
  natsSubscription_Destroy(subscription);
  natsConnection_Destroy(requester);
  natsConnection_Destroy(responder);
  nats_Close();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 2 && args[0] == "bus-round-trip") return bus_round_trip(std::stol(args[1]));
  if (args.size() == 2 && args[0] == "bus-throughput") return bus_throughput(std::stol(args[1]));
  if (args.size() == 3 && args[0] == "nats-round-trip") return nats_round_trip(args[1], std::stol(args[2]));
  return fail("usage: bus-round-trip COUNT | bus-throughput COUNT | nats-round-trip URL COUNT");
}
