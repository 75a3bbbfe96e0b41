// A receiving service for the CLI's version tests (versions.yml): connects as service type
// $EXOBUS_SERVICE of bus $EXOBUS_BUS and, until SIGTERM or SIGINT, prints one line per
// message it receives on stdout,
//   received <name> version=<version> request=<request id> <payload>
// and then
//   echo {"poison": ...}  rejects it (dead letter)
//   echo {"silent": ...}  acks it without a reply
//   echo, anything else   replies echo.ok in the command's version, with the same payload
//   trick                 replies with an outcome named "timeout"
// Prints "ready" on stdout once it receives, so a script can wait for it.

#include <signal.h>

#include <iostream>
#include <string>

#include "exobus/message_version.hpp"
#include "exobus/service.hpp"

namespace {

void print_received(const exobus::Received& message) {
  std::cout << "received " << message.name << " version=" << exobus::version_text(message.version)
            << " request=" << message.request_id.to_string() << ' ' << message.payload << std::endl;
}

void report(const char* what, const exobus::Result<void>& result) {
  if (!result) {
    std::cerr << "echo: " << what << ": " << exobus::to_string(result.error().code) << ": " << result.error().message
              << '\n';
  }
}

}  // namespace

int main() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // before any thread starts: all inherit it

  auto connected = exobus::Service::connect({});
  if (!connected) {
    std::cerr << "echo: " << exobus::to_string(connected.error().code) << ": " << connected.error().message << '\n';
    return 1;
  }
  exobus::Service& service = *connected.value();
  service.on("echo", [](exobus::Delivery& delivery) {
    const exobus::Received& message = delivery.message();
    print_received(message);
    if (message.payload.find("\"poison\"") != std::string::npos) {
      report("reject", delivery.reject());
    } else if (message.payload.find("\"silent\"") == std::string::npos) {
      report("reply", delivery.reply("echo.ok", message.payload, exobus::SendOptions().version(message.version)));
    }
  });
  service.on("trick", [](exobus::Delivery& delivery) {
    print_received(delivery.message());
    report("reply", delivery.reply("timeout", R"({"note":"an outcome named timeout"})"));
  });
  if (const auto started = service.start(); !started) {
    std::cerr << "echo: " << started.error().message << '\n';
    return 1;
  }
  std::cout << "ready" << std::endl;
  int signal = 0;
  sigwait(&signals, &signal);
  service.stop();
  return 0;
}
