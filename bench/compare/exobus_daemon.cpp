#include "exobus_daemon.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <thread>

#include <rapidjson/document.h>

#include "exobus/control/control_client.hpp"
#include "floor_ring.hpp"
#include "transport.hpp"

#ifndef EXOBUSD_PATH
#error "EXOBUSD_PATH must name the exobusd binary"
#endif
#ifndef EXOBUS_PATH
#error "EXOBUS_PATH must name the exobus binary"
#endif

namespace exobus::bench {
namespace {

using Clock = std::chrono::steady_clock;

bool metrics_on = false;
bool tail_on = false;

// One HTTP GET of /metrics from 127.0.0.1:port, read to the end; failures are ignored (the
// daemon may be stopping).
void scrape(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
    constexpr std::string_view request = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
      char buffer[16384];
      while (::recv(fd, buffer, sizeof buffer, 0) > 0) {
      }
    }
  }
  ::close(fd);
}

bool exited(pid_t pid, std::chrono::milliseconds within) {
  const auto until = Clock::now() + within;
  do {
    if (::waitpid(pid, nullptr, WNOHANG) == pid) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  } while (Clock::now() < until);
  return false;
}

// Asks the child to stop, kills it if it has not within 5 s, and forgets it.
void stop_child(pid_t& pid) {
  ::kill(pid, SIGTERM);
  if (!exited(pid, std::chrono::seconds(5))) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  pid = -1;
}

}  // namespace

void serve_daemon_metrics(bool on) { metrics_on = on; }
void attach_daemon_tail(bool on) { tail_on = on; }

std::string size_classes_yaml(std::size_t max_payload, std::size_t in_flight) {
  // 256-byte chunks hold the 64-byte messages (72-byte header + name + sender + payload).
  const std::size_t need = max_payload + 512;  // header, names and the 8-byte envelope
  const bool small = need <= 256 || max_payload <= 64;
  std::string yml =
      "    - { size: 256, count: " + std::to_string(small ? std::max<std::size_t>(in_flight, 16) : 4096) + " }\n";
  if (!small) {
    std::size_t size = 512;
    while (size < need) size *= 2;
    yml += "    - { size: " + std::to_string(size) + ", count: " + std::to_string(in_flight) + " }\n";
  }
  return yml;
}

std::size_t comparison_in_flight(std::size_t max_payload) {
  return floor_ring::RingGeometry::for_payload(max_payload).capacity;
}

void RunBus::start(const std::string& tag, const std::string& application_yml) {
  stop();
  char tmpl[] = "/tmp/exobus-bench-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) throw TransportError(std::string("exobus: mkdtemp: ") + std::strerror(errno));
  dir_ = tmpl;
  bus_ = std::string("bench-").append(tag);
  const auto config = dir_ / "application.yml";
  std::string yml = application_yml;
  if (const auto bus_key = yml.find("bus:\n"); metrics_on && bus_key != std::string::npos) {
    yml.insert(bus_key + 5, "  metrics-address: \"127.0.0.1:0\"\n");
  }
  std::ofstream(config) << yml;

  const std::string config_arg = config.string(), dir_arg = dir_.string();
  daemon_ = ::fork();
  if (daemon_ < 0) throw TransportError("exobus: fork failed");
  if (daemon_ == 0) {
    ::execl(EXOBUSD_PATH, "exobusd", "--config", config_arg.c_str(), "--bus", bus_.c_str(),
            "--runtime-dir", dir_arg.c_str(), "--remove-segment", "--log-level", "warn",
            static_cast<char*>(nullptr));
    std::perror("exec " EXOBUSD_PATH);
    ::_exit(127);
  }
  // Serving once it answers a status request on its socket.
  const control::RuntimePaths paths = control::runtime_paths(bus_, control::RuntimeDir{dir_, false}).value();
  const auto until = Clock::now() + std::chrono::seconds(10);
  while (!control::request_status(paths, std::chrono::milliseconds(200)).ok()) {
    if (::waitpid(daemon_, nullptr, WNOHANG) == daemon_) {
      daemon_ = -1;
      throw TransportError("exobus: exobusd exited at start-up (config in " + dir_.string() + ")");
    }
    if (Clock::now() > until) throw TransportError("exobus: exobusd did not serve its bus within 10 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (tail_on) start_tail();
  if (!metrics_on) return;
  const Result<control::JsonText> status = control::request_status(paths);
  const rapidjson::Document document = status ? status.value().document() : rapidjson::Document();
  if (!document.IsObject() || !document.HasMember("metrics") || !document["metrics"].IsString()) {
    throw TransportError("exobus: exobusd serves no metrics although the configuration asks for them");
  }
  const std::string address = document["metrics"].GetString();
  const auto port = static_cast<std::uint16_t>(std::stoul(address.substr(address.rfind(':') + 1)));
  // Sleeps between scrapes without waking (a stop request ends the wait at once), so the
  // harness's process adds no wake-ups of its own to the measured ones.
  scraper_ = std::jthread([port](std::stop_token stop) {
    std::mutex mutex;
    std::condition_variable_any wake;
    std::unique_lock lock(mutex);
    while (!stop.stop_requested()) {
      scrape(port);
      wake.wait_for(lock, stop, std::chrono::seconds(1), [] { return false; });
    }
  });
}

void RunBus::start_tail() {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw TransportError(std::string("exobus: pipe: ") + std::strerror(errno));
  const std::string dir_arg = dir_.string();
  tail_ = ::fork();
  if (tail_ < 0) throw TransportError("exobus: fork failed");
  if (tail_ == 0) {
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, STDOUT_FILENO);
    ::dup2(pipe_fds[1], STDERR_FILENO);
    ::execl(EXOBUS_PATH, "exobus", "tail", "--bus", bus_.c_str(), "--runtime-dir", dir_arg.c_str(), "--json",
            "--payload", static_cast<char*>(nullptr));
    std::perror("exec " EXOBUS_PATH);
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  tail_stderr_ = pipe_fds[0];
  // Attached once it says what it traces (its first line on stderr).
  std::string said;
  pollfd readable{tail_stderr_, POLLIN, 0};
  const auto until = Clock::now() + std::chrono::seconds(10);
  while (said.find('\n') == std::string::npos && Clock::now() < until) {
    if (::poll(&readable, 1, 100) <= 0) continue;
    char buffer[512];
    const ssize_t got = ::read(tail_stderr_, buffer, sizeof buffer);
    if (got <= 0) break;
    said.append(buffer, static_cast<std::size_t>(got));
  }
  if (said.find("tracing") == std::string::npos) throw TransportError("exobus: exobus tail did not attach: " + said);
}

void RunBus::stop() {
  if (tail_ > 0) {
    stop_child(tail_);
    ::close(tail_stderr_);
    tail_stderr_ = -1;
  }
  if (scraper_.joinable()) {
    scraper_.request_stop();
    scraper_.join();
  }
  if (daemon_ > 0) stop_child(daemon_);
  if (!dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  bus_.clear();
  dir_.clear();
}

std::unique_ptr<Service> RunBus::connect(const std::string& service, WaitMode mode, bool copy_payloads) const {
  ServiceOptions options;
  options.copy_payloads = copy_payloads;
  options.bus = bus_;
  options.service = service;
  options.runtime_dir = dir_;
  options.wait_mode = mode;
  options.send_timeout = std::chrono::milliseconds(5000);
  const auto until = Clock::now() + std::chrono::seconds(10);
  for (;;) {
    Result<std::unique_ptr<Service>> connected = Service::connect(options);
    if (connected) return std::move(connected).value();
    if (Clock::now() > until)
      throw TransportError("exobus: " + service + " cannot connect: " + connected.error().message);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace exobus::bench
