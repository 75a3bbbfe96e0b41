// A service for the tail tests: connects as service type $EXOBUS_SERVICE of bus $EXOBUS_BUS.
//   relay NAMES [FORWARD]   handles the messages it calls NAMES (a comma-separated list):
//                           replies OUTCOME with the same payload if FORWARD is
//                           "reply:OUTCOME", else sends FORWARD (if given) with
//                           the same payload through the delivery (so in its request), then
//                           acks (a first delivery of a payload holding "release-once" it
//                           releases instead, by throwing, so it comes back redelivered);
//                           until SIGTERM or SIGINT, then prints "handled N"
//   relay --flood NAME N    sends N messages NAME as fast as the queues take them, waiting
//                           for room when they are full, then prints "sent N" and exits
// Prints "ready" on stdout once it receives (or before it floods).

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <stdexcept>
#include <string>

#include "exobus/service.hpp"

namespace {

int flood(exobus::Service& service, const std::string& name, long count) {
  std::cout << "ready" << std::endl;
  long sent = 0;
  for (long n = 0; n < count; ++n) {
    const std::string payload = "{\"n\":" + std::to_string(n) + "}";
    // A queue full for longer than the send timeout is waited out: every message goes.
    exobus::Result<void> result = service.send(name, payload);
    while (!result && result.error().code == exobus::ErrorCode::queue_full) result = service.send(name, payload);
    if (!result) {
      std::cerr << "relay: send " << n << " failed: " << result.error().message << '\n';
      return 1;
    }
    ++sent;
  }
  std::cout << "sent " << sent << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || (std::string(argv[1]) == "--flood" && argc != 4)) {
    std::cerr << "usage: relay NAMES [FORWARD] | relay --flood NAME COUNT\n";
    return 2;
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // before any thread starts: all inherit it

  exobus::ServiceOptions options;
  options.send_timeout = std::chrono::milliseconds(100);
  auto connected = exobus::Service::connect(options);
  if (!connected) {
    std::cerr << "relay: " << exobus::to_string(connected.error().code) << ": " << connected.error().message << '\n';
    return 1;
  }
  exobus::Service& service = *connected.value();
  if (std::string(argv[1]) == "--flood") return flood(service, argv[2], std::stol(argv[3]));

  const std::string forward = argc > 2 ? argv[2] : "";
  std::atomic<long> handled{0};
  const auto handle = [&](exobus::Delivery& delivery) {
    if (delivery.message().payload.find("release-once") != std::string::npos && !delivery.message().redelivered()) {
      throw std::runtime_error("released once");
    }
    if (forward.starts_with("reply:")) {
      const auto replied = delivery.reply(forward.substr(6), delivery.message().payload);
      if (!replied) std::cerr << "relay: reply failed: " << replied.error().message << '\n';
    } else if (!forward.empty()) {
      const auto sent = delivery.send(forward, delivery.message().payload);
      if (!sent) std::cerr << "relay: forward failed: " << sent.error().message << '\n';
    }
    handled.fetch_add(1, std::memory_order_relaxed);
  };
  const std::string names = argv[1];
  for (std::size_t from = 0; from <= names.size();) {
    const std::size_t comma = std::min(names.find(',', from), names.size());
    service.on(names.substr(from, comma - from), handle);
    from = comma + 1;
  }
  if (const auto started = service.start(); !started) {
    std::cerr << "relay: " << started.error().message << '\n';
    return 1;
  }
  std::cout << "ready" << std::endl;
  int signal = 0;
  sigwait(&signals, &signal);
  service.stop();
  std::cout << "handled " << handled.load() << std::endl;
  return 0;
}
