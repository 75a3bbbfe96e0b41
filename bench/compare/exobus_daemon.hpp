#pragma once
// A real ExoBus bus for one measurement: a private runtime directory, an application.yml
// written for the run, and the real exobusd serving it. Used by the exobus transports and by
// the ExoBus-only workloads (fan-out, competing instances, idle CPU).
//
// Not promised: a daemon that ignores SIGTERM for 5 s is killed, and then the segment is
// removed here instead of by the daemon.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "exobus/service.hpp"

namespace exobus::bench {

// With metrics on, every bus started afterwards serves them (bus.metrics-address on a port
// the kernel chooses) and is scraped once a second over HTTP while it runs, as a Prometheus
// server would: the cost of being watched, measured with everything else.
void serve_daemon_metrics(bool on);
// With a tail on, every bus started afterwards has a real `exobus tail --json --payload`
// attached while it runs (its output thrown away): the cost of a live trace, every delivery
// traced, measured with everything else.
void attach_daemon_tail(bool on);

class RunBus {
 public:
  RunBus() = default;
  ~RunBus() { stop(); }
  RunBus(const RunBus&) = delete;
  RunBus& operator=(const RunBus&) = delete;

  // Writes `application_yml` into a fresh temporary directory, starts exobusd on bus
  // `bench-<tag>` there, and returns once it answers on its socket. Throws TransportError.
  void start(const std::string& tag, const std::string& application_yml);
  // Stops the tail and the daemon (SIGTERM, then SIGKILL after 5 s; a clean stop releases the memory) and
  // removes the temporary directory, which ends a keeper left by a killed one. Idempotent.
  void stop();

  const std::string& bus() const { return bus_; }
  const std::filesystem::path& runtime_dir() const { return dir_; }
  pid_t daemon_pid() const { return daemon_; }

  // Connects one instance of `service` to this bus, retrying while the daemon is still
  // coming up (up to 10 s). Throws TransportError with the library's message otherwise.
  // copy_payloads: ServiceOptions::copy_payloads (false for receivers that read in place).
  std::unique_ptr<Service> connect(const std::string& service, WaitMode mode, bool copy_payloads = true) const;

 private:
  // Starts `exobus tail` on this bus and returns once it is attached. Throws TransportError.
  void start_tail();

  std::string bus_;
  std::filesystem::path dir_;
  pid_t daemon_ = -1;
  pid_t tail_ = -1;
  int tail_stderr_ = -1;  // kept open while the tail runs, so its error messages have a reader
  std::jthread scraper_;
};

// Size classes for a run whose largest payload is `max_payload` bytes: 256-byte chunks for
// small messages, and one class that holds max_payload plus the message header; `in_flight`
// chunks of the class that carries the payload (at least 4096 of 256 bytes), which bounds
// the messages queued or held at once.
std::string size_classes_yaml(std::size_t max_payload, std::size_t in_flight);

// The comparison gives ExoBus the floor ring's geometry: as many messages in flight as the
// floor has slots for this payload, so both work in the same amount of memory.
std::size_t comparison_in_flight(std::size_t max_payload);

}  // namespace exobus::bench
