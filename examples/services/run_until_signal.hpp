#pragma once
// Example services run until SIGINT or SIGTERM, then leave the bus cleanly.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "exobus/service.hpp"

namespace demo {

inline std::unique_ptr<exobus::Service> connect_or_exit(const char* service) {
  auto connected = exobus::Service::connect({.service = service});
  if (!connected) {
    std::fprintf(stderr, "%s: %s\n", service, connected.error().message.c_str());
    std::exit(1);
  }
  return std::move(connected).value();
}

inline void run_until_signal(exobus::Service& service) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  if (auto started = service.start(); !started) {
    std::fprintf(stderr, "%s: %s\n", service.service_type().c_str(), started.error().message.c_str());
    std::exit(1);
  }
  int received = 0;
  sigwait(&signals, &received);
  service.stop();
}

}  // namespace demo
