// A receiving service for the CLI tests: connects as service type $EXOBUS_SERVICE of bus
// $EXOBUS_BUS and, until SIGTERM or SIGINT,
//   greet {"name": N}     replies greet.ok {"greeting": "hello N"}
//   greet {"poison": ...} rejects it (dead letter)
//   notify                acks it without a reply
//   notify {"sleep_ms": M} acks it after M ms (a slow handler)
// Prints "ready" on stdout once it receives, so a script can wait for it.

#include <signal.h>

#include <chrono>
#include <iostream>
#include <string>
#include <thread>

#include "exobus/service.hpp"

int main() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // before any thread starts: all inherit it

  auto connected = exobus::Service::connect({});
  if (!connected) {
    std::cerr << "greeter: " << exobus::to_string(connected.error().code) << ": " << connected.error().message << '\n';
    return 1;
  }
  exobus::Service& service = *connected.value();
  service.on("greet", [](exobus::Delivery& delivery) {
    const std::string& payload = delivery.message().payload;
    if (payload.find("\"poison\"") != std::string::npos) {
      (void)delivery.reject();
      return;
    }
    const auto start = payload.find("\"name\":\"");
    std::string name = "nobody";
    if (start != std::string::npos) {
      const auto from = start + 8;
      name = payload.substr(from, payload.find('"', from) - from);
    }
    const auto replied = delivery.reply("greet.ok", "{\"greeting\":\"hello " + name + "\"}");
    if (!replied) std::cerr << "greeter: reply failed: " << replied.error().message << '\n';
  });
  service.on("notify", [](exobus::Delivery& delivery) {
    const std::string& payload = delivery.message().payload;
    if (const auto at = payload.find("\"sleep_ms\":"); at != std::string::npos) {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::stoul(payload.substr(at + 11))));
    }
  });
  if (const auto started = service.start(); !started) {
    std::cerr << "greeter: " << started.error().message << '\n';
    return 1;
  }
  std::cout << "ready" << std::endl;
  int signal = 0;
  sigwait(&signals, &signal);
  service.stop();
  return 0;
}
