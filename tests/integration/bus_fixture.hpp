#pragma once
// A real bus for multi-process tests: the exobusd binary, its configuration in a fresh
// directory, and every process a test starts (services forked as children, the daemon).
//
//   Bus bus(R"(
//     web:
//       config: { sends: [job.run] }
//     worker:
//       config: { receives: [job.run] }
//   )");
//   auto web = bus.connect("web");
//
// Each Bus has its own bus name ("it-<pid>-<n>") and its own runtime directory, so tests
// never see each other's sockets or memory. Its destructor stops every process it started
// (SIGTERM, then SIGKILL after a grace period, always reaped) and the daemon's memory
// keeper, also when the test failed half-way; then it prints the daemon's log.
//
// Children are forked before they connect: a child never uses a Service of its parent.
// They report through a Ledger in MAP_SHARED memory, which both sides read and write with
// atomics.

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "exobus/control/control_client.hpp"
#include "exobus/control/runtime_paths.hpp"
#include "exobus/envelope.hpp"
#include "exobus/service.hpp"

namespace exobus::integration {

using namespace std::chrono_literals;

// Generous on purpose: these tests check what happens, not how fast.
inline constexpr std::chrono::milliseconds kPatience = 10s;

// Polls `condition` until it holds or `bound` passes; true if it held.
template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds bound = kPatience) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// The smallest application: `web` sends job.run, which `worker` receives.
inline constexpr const char* kWebToWorker = R"(
  web:
    config: { sends: [job.run] }
  worker:
    config: { receives: [job.run] }
)";

// Payloads that carry a message number: {"n":17}.
// The threads this process runs now (its tasks in /proc).
inline std::size_t threads_of_this_process() {
  std::size_t threads = 0;
  for ([[maybe_unused]] const auto& task : std::filesystem::directory_iterator("/proc/self/task")) ++threads;
  return threads;
}

inline std::string numbered(unsigned n) { return "{\"n\":" + std::to_string(n) + "}"; }
inline unsigned number_of(const std::string& payload) {
  const auto colon = payload.find(':');
  if (colon == std::string::npos) return ~0u;
  return static_cast<unsigned>(std::strtoul(payload.c_str() + colon + 1, nullptr, 10));
}

// What a service handled, per message number. Lives in MAP_SHARED memory (see Shared) when
// a child process writes it, or anywhere when handlers of this process do.
struct Ledger {
  static constexpr unsigned kCapacity = 4096;

  std::atomic<std::uint32_t> ready{0};    // the child connected and started
  std::atomic<std::uint32_t> failed{0};   // the child could not connect or start
  std::atomic<std::uint32_t> total{0};    // deliveries (or sends) recorded
  std::atomic<std::uint32_t> times[kCapacity]{};
  std::atomic<std::uint32_t> redelivered[kCapacity]{};

  void record(unsigned n, bool was_redelivered = false) {
    if (n >= kCapacity) n = kCapacity - 1;  // out of range lands in the last cell: visible
    times[n].fetch_add(1, std::memory_order_relaxed);
    if (was_redelivered) redelivered[n].fetch_add(1, std::memory_order_relaxed);
    total.fetch_add(1, std::memory_order_release);  // pairs with the acquire in count()
  }
  void record(const Received& message) { record(number_of(message.payload), message.redelivered()); }

  std::uint32_t count() const { return total.load(std::memory_order_acquire); }
  std::uint32_t times_of(unsigned n) const { return times[n].load(std::memory_order_relaxed); }
  bool saw(unsigned n) const { return times_of(n) > 0; }
  std::uint32_t redelivered_of(unsigned n) const { return redelivered[n].load(std::memory_order_relaxed); }
  // How many of 0..n-1 were recorded at least once.
  unsigned distinct(unsigned n) const {
    unsigned seen = 0;
    for (unsigned k = 0; k < n; ++k) seen += saw(k);
    return seen;
  }
};

// A T placed in anonymous MAP_SHARED memory, so a forked child and its parent see one object.
template <class T>
class Shared {
 public:
  Shared() {
    void* memory = ::mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) throw std::runtime_error("mmap of shared test memory failed");
    object_ = new (memory) T();
  }
  Shared(const Shared&) = delete;
  Shared& operator=(const Shared&) = delete;
  ~Shared() {
    object_->~T();
    ::munmap(object_, sizeof(T));
  }
  T* operator->() const { return object_; }
  T& operator*() const { return *object_; }

 private:
  T* object_;
};

class Bus {
 public:
  // `services` is the YAML under `services:`, `bus_section` the YAML under `bus:` (both
  // indented by two spaces, or given as flow mappings).
  explicit Bus(const std::string& services, const std::string& bus_section = "", bool start = true)
      : name_("it-" + std::to_string(::getpid()) + "-" + std::to_string(next_number())) {
    std::string pattern = "/tmp/exobus-it-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    runtime_dir_ = dir_ / "run";
    config_file_ = dir_ / "application.yml";
    log_file_ = dir_ / "exobusd.log";
    std::ofstream config(config_file_);
    config << "name: " << name_ << "\n";
    if (!bus_section.empty()) config << "bus:\n" << indent(bus_section);
    config << "services:\n" << indent(services);
    config.close();
    // Children inherit it; in-process services get it through options() as well.
    ::setenv(control::kRuntimeDirEnvironmentVariable, runtime_dir_.c_str(), 1);
    if (start) start_daemon();
  }

  Bus(const Bus&) = delete;
  Bus& operator=(const Bus&) = delete;

  ~Bus() {
    for (const pid_t child : children_) stop_process(child);
    if (daemon_ > 0) {
      // A clean shutdown exits 0; a sanitizer report or a hang on SIGTERM does not.
      const int status = stop_process(daemon_);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "exobusd stopped with status " << status;
    }
    // A daemon that was killed leaves its keeper holding the memory: not ours to leave.
    if (const pid_t keeper = keeper_pid(); keeper > 0) ::kill(keeper, SIGKILL);
    if (::testing::Test::HasFailure()) {
      std::fprintf(stderr, "---- exobusd log of bus %s ----\n%s---- end of log ----\n", name_.c_str(),
                   daemon_log().c_str());
    }
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  const std::string& name() const { return name_; }
  const std::filesystem::path& runtime_dir() const { return runtime_dir_; }
  const std::filesystem::path& config_file() const { return config_file_; }
  pid_t daemon_pid() const { return daemon_; }
  control::RuntimePaths paths() const {
    return control::runtime_paths(name_, control::RuntimeDir{runtime_dir_, false}).value();
  }

  // What every exobusd of this bus logged so far.
  std::string daemon_log() const {
    std::ifstream log(log_file_);
    std::stringstream text;
    text << log.rdbuf();
    return text.str();
  }

  // Starts exobusd and waits until it answers on its control socket.
  void start_daemon() {
    const pid_t pid = ::fork();
    if (pid == -1) throw std::runtime_error("fork failed");
    if (pid == 0) {
      const int log = ::open(log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
      if (log != -1) {
        ::dup2(log, STDOUT_FILENO);
        ::dup2(log, STDERR_FILENO);
      }
      const std::string config = config_file_.string(), runtime = runtime_dir_.string();
      const char* argv[] = {EXOBUSD_PATH,     "--config",         config.c_str(), "--bus", name_.c_str(),
                            "--runtime-dir",  runtime.c_str(),    "--remove-segment", nullptr};
      ::execv(EXOBUSD_PATH, const_cast<char* const*>(argv));
      ::_exit(127);
    }
    daemon_ = pid;
    const bool serving = eventually([&] {
      int status = 0;
      if (::waitpid(daemon_, &status, WNOHANG) == daemon_) {
        daemon_ = -1;
        return true;  // exited: reported below
      }
      return control::request_status(paths(), 500ms).ok();
    });
    if (!serving || daemon_ == -1) ADD_FAILURE() << "exobusd of bus " << name_ << " did not start serving";
  }

  // The process keeping this bus's memory between daemons (`exobusd --keep`), found by its
  // command line; -1 if none runs. Not our child: the daemon starts it in its own session.
  pid_t keeper_pid() const {
    const std::string wanted = std::string("--keep") + '\0' + "--bus" + '\0' + name_ + '\0';
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      const std::string pid = entry.path().filename().string();
      if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
      std::string command_line;
      try {
        std::ifstream file(entry.path() / "cmdline", std::ios::binary);
        command_line.assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
      } catch (const std::ios_base::failure&) {
        continue;  // it exited while being read (ESRCH): not the keeper of a bus being stopped
      }
      if (command_line.find(wanted) != std::string::npos) return static_cast<pid_t>(std::stol(pid));
    }
    return -1;
  }

  // kill -9 of the daemon, reaped; its keeper still holds the memory.
  void kill_daemon() {
    if (daemon_ <= 0) return;
    ::kill(daemon_, SIGKILL);
    ::waitpid(daemon_, nullptr, 0);
    daemon_ = -1;
  }

  ServiceOptions options(const std::string& type, unsigned handler_threads = 0) const {
    ServiceOptions options;
    options.bus = name_;
    options.service = type;
    options.runtime_dir = runtime_dir_;
    options.handler_threads = handler_threads;
    return options;
  }

  Result<std::unique_ptr<Service>> try_connect(const std::string& type, unsigned handler_threads = 0) const {
    return Service::connect(options(type, handler_threads));
  }

  // A connected instance of `type` in this process, or null after reporting the failure.
  std::unique_ptr<Service> connect(const std::string& type, unsigned handler_threads = 0) const {
    Result<std::unique_ptr<Service>> service = try_connect(type, handler_threads);
    if (!service) {
      ADD_FAILURE() << "cannot connect '" << type << "': " << to_string(service.error().code) << ": "
                    << service.error().message;
      return nullptr;
    }
    return std::move(service).value();
  }

  // Forks a child that runs `body` and exits with its result. The child is stopped and
  // reaped by the destructor if the test did not end it. Only a process of one thread
  // forks: a child forked while a thread of a service here holds a lock (the allocator's,
  // say) can block on it forever, so spawning after connect() is the test's bug, reported.
  pid_t spawn(std::function<int()> body) {
    if (const std::size_t threads = threads_of_this_process(); threads != 1) {
      throw std::logic_error("spawn() in a process of " + std::to_string(threads) +
                             " threads: spawn children before connecting services here");
    }
    const pid_t pid = ::fork();
    if (pid == -1) throw std::runtime_error("fork failed");
    if (pid == 0) {
      int code = 99;
      try {
        code = body();
      } catch (...) {
      }
      ::_exit(code);
    }
    children_.push_back(pid);
    return pid;
  }

  // A child running one instance of `type`: `setup` registers its handlers, then it starts
  // and serves until killed. Its readiness, or failure, shows in `ledger`.
  pid_t spawn_service(const std::string& type, Ledger& ledger, std::function<void(Service&)> setup,
                      unsigned handler_threads = 0) {
    const ServiceOptions service_options = options(type, handler_threads);
    return spawn([service_options, &ledger, setup] {
      Result<std::unique_ptr<Service>> service = Service::connect(service_options);
      if (!service) {
        ledger.failed.store(1, std::memory_order_release);
        return 2;
      }
      setup(*service.value());
      if (!service.value()->start()) {
        ledger.failed.store(1, std::memory_order_release);
        return 3;
      }
      ledger.ready.store(1, std::memory_order_release);
      for (;;) ::pause();
    });
  }

  // Waits until a child from spawn_service() is serving; false if it failed or never did.
  static bool ready(const Ledger& ledger) {
    return eventually([&] { return ledger.ready.load(std::memory_order_acquire) || ledger.failed.load(); }) &&
           ledger.ready.load(std::memory_order_acquire) == 1;
  }

  // kill -9 of a child, reaped.
  void kill_child(pid_t child) {
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    std::erase(children_, child);
  }

  // Waits for a child to exit by itself and reaps it; its wait status.
  int wait_child(pid_t child) {
    int status = -1;
    ::waitpid(child, &status, 0);
    std::erase(children_, child);
    return status;
  }

  // The daemon's status document (a null document if it did not answer).
  rapidjson::Document status() const {
    const auto status = control::request_status(paths());
    rapidjson::Document document;
    if (status) document = status.value().document();
    return document;
  }

  // One service type's entry in the status document, as a field value (0 if absent).
  std::uint64_t type_status(const std::string& type, const char* field) const {
    const rapidjson::Document document = status();
    if (!document.IsObject() || !document.HasMember("service_types")) return 0;
    for (const auto& entry : document["service_types"].GetArray()) {
      if (entry["name"].GetString() == type && entry.HasMember(field)) return entry[field].GetUint64();
    }
    return 0;
  }

  // The dead letters of a service type, through the daemon's `dlq` command.
  rapidjson::Document dead_letters(const std::string& type) const {
    const auto args = control::JsonText::parse(R"({"type":")" + type + "\"}");
    const auto reply = control::run_command(paths(), "dlq", args.value());
    rapidjson::Document document;
    if (reply) document = reply.value().document();
    return document;
  }

 private:
  static unsigned next_number() {
    static std::atomic<unsigned> number{0};
    return number.fetch_add(1);
  }

  static std::string indent(const std::string& yaml) {
    // Re-indents a raw string literal: its common leading indentation becomes two spaces.
    std::vector<std::string> lines;
    std::istringstream in(yaml);
    std::size_t common = std::string::npos;
    for (std::string line; std::getline(in, line);) {
      if (line.find_first_not_of(' ') == std::string::npos) continue;
      common = std::min(common, line.find_first_not_of(' '));
      lines.push_back(line);
    }
    std::string out;
    for (const std::string& line : lines) out += "  " + line.substr(common) + "\n";
    return out;
  }

  // SIGTERM (after SIGCONT, in case it is stopped), then SIGKILL after a grace period;
  // always reaped.
  // Returns the wait status.
  static int stop_process(pid_t pid) {
    ::kill(pid, SIGCONT);
    ::kill(pid, SIGTERM);
    int status = -1;
    const auto deadline = std::chrono::steady_clock::now() + 3s;
    while (std::chrono::steady_clock::now() < deadline) {
      const pid_t done = ::waitpid(pid, &status, WNOHANG);
      if (done == pid || (done == -1 && errno == ECHILD)) return status;
      std::this_thread::sleep_for(10ms);
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return status;
  }

  std::string name_;
  std::filesystem::path dir_, runtime_dir_, config_file_, log_file_;
  pid_t daemon_ = -1;
  std::vector<pid_t> children_;
};

// What a child running as another user got from reaching for the daemon's descriptors (the
// only way to the bus's memory other than being granted it) and from Service::connect.
// Lives in Shared memory, written by the child.
struct ForeignAttempt {
  std::atomic<int> done{0};
  std::atomic<int> connected{0};
  std::atomic<int> code{0};        // the ErrorCode, when it did not connect
  std::atomic<int> open_errno{0};  // of opening /proc/<exobusd>/fd; 0: it opened
  char message[1024]{};
};

// In a forked child: `become` switches to another user for good (false if it cannot), then
// the child lists the daemon's descriptors and connects an instance of `type`, recording
// both in `outcome`. Waits for the child.
inline void attempt_as(Bus& bus, const std::function<bool()>& become, const std::string& type,
                       ForeignAttempt& outcome) {
  const ServiceOptions options = bus.options(type);
  const std::string descriptors = "/proc/" + std::to_string(bus.daemon_pid()) + "/fd";
  const pid_t child = bus.spawn([&] {
    if (!become()) return 3;
    const int fd = ::open(descriptors.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    outcome.open_errno.store(fd == -1 ? errno : 0);
    if (fd != -1) ::close(fd);
    const Result<std::unique_ptr<Service>> service = Service::connect(options);
    outcome.connected.store(service.ok());
    if (!service) {
      outcome.code.store(static_cast<int>(service.error().code));
      std::strncpy(outcome.message, service.error().message.c_str(), sizeof outcome.message - 1);
    }
    outcome.done.store(1);
    return 0;
  });
  const int status = bus.wait_child(child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
}

// Thread-safe record of what handlers of this process received, in arrival order.
class Inbox {
 public:
  void add(Received message) {
    std::lock_guard lock(mutex_);
    messages_.push_back(std::move(message));
  }
  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return messages_.size();
  }
  std::vector<Received> messages() const {
    std::lock_guard lock(mutex_);
    return messages_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<Received> messages_;
};

}  // namespace exobus::integration
