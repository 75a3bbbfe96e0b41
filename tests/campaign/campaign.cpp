// exobus_campaign: a fault campaign against a real bus. It starts exobusd on a bus of its
// own, forks sender and receiver processes that use the client library, and for a while
// kills them (kill -9, or SIGKILL at a shared-memory fault point), kills and restarts the
// daemon, stops receivers past their ack deadline, stops senders and the daemon for a
// while, slows receivers down, and lets instances attach and leave. Then it stops the
// faults, waits until the bus is quiet, and checks: every send that returned ok was
// acknowledged by every subscribed type, no duplicate delivery to a type went unflagged,
// nothing leaked (pool, queues, leases), and no process wedged.
//
//   exobus_campaign [--seed N] [--duration S] [--min-kills N] [--min-daemon-kills N]
//                   [--max-duration S] [--senders N] [--receivers N] [--keep]
//   exobus_campaign --check DIR     check the history files in DIR only
//
// Exit status 0 when every check passed. The seed is printed first: rerun with --seed to
// replay the same fault schedule (timing still varies).
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <rapidjson/document.h>

#include "checker.hpp"
#include "exobus/control/control_client.hpp"
#include "exobus/control/runtime_paths.hpp"
#include "exobus/envelope.hpp"
#include "exobus/service.hpp"
#include "exobus/shm/fault_point.hpp"
#include "history.hpp"

namespace exobus::campaign {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kAckTimeout{500};
constexpr std::chrono::milliseconds kStopPastDeadline{900};  // SIGSTOP this long: > ack timeout
constexpr std::chrono::seconds kQuiesceBound{60};
constexpr std::chrono::seconds kWedgeBound{8};  // a receiver idle this long with work queued
// Small enough that bursting senders run them out (queue_full), with receivers stopped or slow.
constexpr std::uint32_t kSmallChunks = 2048;  // 256-byte chunks, shared by all messages
constexpr std::uint32_t kAuditQueue = 256;
constexpr std::uint32_t kAuditType = 2;
static_assert(kReceiverTypes[kAuditType] == "audit");

struct Options {
  std::uint64_t seed = 0;
  double duration_s = 40;        // the fault phase lasts at least this long
  double max_duration_s = 0;     // ... and at most this long (0: = duration)
  std::uint64_t min_kills = 0;   // process kills (any kind) the fault phase must reach
  std::uint64_t min_daemon_kills = 0;
  unsigned senders = 3;
  unsigned receivers = 6;
  bool keep = false;
  std::string check_only;
};

// ---------------------------------------------------------------- the child processes

volatile sig_atomic_t stop_requested = 0;
void on_sigterm(int) { stop_requested = 1; }

// Runs in a child forked with SIGTERM blocked (see Campaign::spawn): a SIGTERM sent before
// the handler is in place waits for it instead of killing the child.
void become_child() {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the runner
  struct sigaction action{};
  action.sa_handler = on_sigterm;
  ::sigaction(SIGTERM, &action, nullptr);
  sigset_t terminate;
  sigemptyset(&terminate);
  sigaddset(&terminate, SIGTERM);
  ::sigprocmask(SIG_UNBLOCK, &terminate, nullptr);
}

ServiceOptions service_options(const std::string& bus, const std::filesystem::path& runtime_dir, std::string type) {
  ServiceOptions options;
  options.bus = bus;
  options.service = std::move(type);
  options.runtime_dir = runtime_dir;
  options.send_timeout = 200ms;
  return options;
}

// Connects, retrying while the daemon is down (it may be being restarted). Null when told
// to stop first, or after 30 s.
std::unique_ptr<Service> connect_patiently(const ServiceOptions& options) {
  const auto deadline = Clock::now() + 30s;
  while (Clock::now() < deadline && !stop_requested) {
    Result<std::unique_ptr<Service>> service = Service::connect(options);
    if (service) return std::move(service).value();
    std::this_thread::sleep_for(20ms);
  }
  return nullptr;
}

struct ChildPlan {
  std::uint64_t id = 0;           // sender id or receiver number, unique per incarnation
  std::uint32_t type = 0;         // receivers: index in kReceiverTypes
  shm::FaultPoint fault = shm::FaultPoint::none;
  std::uint32_t fault_hits = 0;
  shm::FaultAction fault_action = shm::FaultAction::kill_process;
  std::uint32_t slow_ms = 0;      // receivers: sleep per message, up to this
  std::uint32_t lifetime_ms = 0;  // 0: until told to stop; else leave cleanly after it
  std::uint32_t release_permille = 0;  // receivers: throw (release) for this share
  std::uint32_t burst = 0;        // senders: try_send this many back to back, then pause; 0: steady
};

int run_sender(const std::string& bus, const std::filesystem::path& runtime_dir,
               const std::filesystem::path& history_file, const ChildPlan& plan) {
  HistoryWriter history(history_file);
  if (!history.ok()) return 2;
  auto service = connect_patiently(service_options(bus, runtime_dir, "producer"));
  if (!service) return stop_requested ? 0 : 3;
  if (plan.fault != shm::FaultPoint::none) shm::arm_fault(plan.fault, plan.fault_hits, plan.fault_action);
  std::mt19937_64 random(plan.id * 7919 + 1);
  for (std::uint64_t seq = 0; !stop_requested; ++seq) {
    const std::uint32_t kind = random() % 3 == 0 ? 1 : 0;
    const std::string payload = "{\"s\":" + std::to_string(plan.id) + ",\"q\":" + std::to_string(seq) + "}";
    const std::string_view name = kMessageKinds[kind].name;
    // A bursting sender never waits for room: it runs the queues and the pool out.
    const Result<void> sent = plan.burst > 0 ? service->try_send(name, payload) : service->send(name, payload);
    if (sent) {
      history.sent(plan.id, seq, kind);
    } else if (sent.error().code == ErrorCode::queue_full) {
      history.refused(plan.id, seq, kind);
    }
    if (plan.burst == 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(1000 + random() % 2000));
    } else if (seq % plan.burst == plan.burst - 1) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200 + random() % 300));
    }
  }
  return 0;
}

int run_receiver(const std::string& bus, const std::filesystem::path& runtime_dir,
                 const std::filesystem::path& history_file, const ChildPlan& plan) {
  HistoryWriter history(history_file);
  if (!history.ok()) return 2;
  auto service = connect_patiently(service_options(bus, runtime_dir, std::string(kReceiverTypes[plan.type])));
  if (!service) return stop_requested ? 0 : 3;
  const std::uint32_t instance = service->instance();
  std::mt19937_64 random(plan.id * 104729 + 3);
  for (const MessageKind& kind : kMessageKinds) {
    if ((kind.target_mask >> plan.type & 1u) == 0) continue;
    service->on(std::string(kind.name), [&](Delivery& delivery) {
      const Received& message = delivery.message();
      unsigned long long sender = 0, seq = 0;
      if (std::sscanf(message.payload.c_str(), "{\"s\":%llu,\"q\":%llu}", &sender, &seq) != 2) {
        sender = ~0ull;  // unreadable payload: recorded under a sender no send has
      }
      history.delivered(sender, seq, plan.type, instance, message.deliveries, message.id.to_string());
      if (plan.slow_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(random() % (plan.slow_ms + 1)));
      if (plan.release_permille > 0 && random() % 1000 < plan.release_permille) {
        throw std::runtime_error("released on purpose");  // the library releases it
      }
      history.acking(sender, seq, plan.type);
      if (delivery.ack()) history.acked(sender, seq, plan.type);
    });
  }
  if (plan.fault != shm::FaultPoint::none) shm::arm_fault(plan.fault, plan.fault_hits, plan.fault_action);
  if (!service->start()) return 4;
  const auto leave_at = Clock::now() + std::chrono::milliseconds(plan.lifetime_ms);
  while (!stop_requested && (plan.lifetime_ms == 0 || Clock::now() < leave_at)) std::this_thread::sleep_for(10ms);
  service->stop();
  return 0;
}

// ---------------------------------------------------------------- the runner

enum class Role { sender, receiver };

struct Child {
  pid_t pid = -1;
  Role role = Role::sender;
  ChildPlan plan;
  bool killed_by_us = false;
  std::optional<Clock::time_point> stopped_until;  // SIGSTOPped, to be continued then
};

struct Figures {
  std::uint64_t sender_kills = 0, receiver_kills = 0, fault_point_kills = 0, daemon_kills = 0;
  std::uint64_t stops = 0, sender_stops = 0, daemon_stops = 0, self_stops = 0, clean_leaves = 0, spawns = 0, abnormal_exits = 0;
  std::uint64_t process_kills() const { return sender_kills + receiver_kills + fault_point_kills; }
};

class Campaign {
 public:
  explicit Campaign(const Options& options) : options_(options), random_(options.seed) {
    bus_ = "campaign-" + std::to_string(::getpid());
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/exobus-campaign-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    runtime_dir_ = dir_ / "run";
    history_dir_ = dir_ / "history";
    std::filesystem::create_directories(history_dir_);
    config_file_ = dir_ / "application.yml";
    write_config();
  }

  ~Campaign() {
    for (Child& child : children_) stop_process(child.pid);
    if (daemon_ > 0) stop_process(daemon_);
    std::error_code ignored;
    if (!options_.keep) std::filesystem::remove_all(dir_, ignored);
  }

  int run() {
    std::printf("campaign: seed %" PRIu64 ", bus %s, directory %s\n", options_.seed, bus_.c_str(), dir_.c_str());
    std::fflush(stdout);
    if (!start_daemon()) {
      fail("exobusd did not start serving");
      return 1;
    }
    for (unsigned k = 0; k < options_.receivers; ++k) spawn_receiver(k % kReceiverTypes.size(), false);
    for (unsigned k = 0; k < options_.senders; ++k) spawn_sender(false);

    const auto start = Clock::now();
    fault_phase(start);
    const double fault_seconds = seconds_since(start);
    std::printf("campaign: fault phase over after %.1f s; quiescing\n", fault_seconds);
    std::fflush(stdout);

    bool ok = quiesce();
    // Stop everything cleanly, then read what everyone wrote.
    for (Child& child : children_) stop_process(child.pid);
    children_.clear();

    const History history = read_histories(history_dir_);
    const CheckReport report = check(history);
    std::printf("\n==== campaign summary (seed %" PRIu64 ", %.1f s total, %.1f s of faults) ====\n", options_.seed,
                seconds_since(start), fault_seconds);
    std::printf("history files              %" PRIu64 " (%" PRIu64 " torn lines)\n", history.files, history.torn_lines);
    std::printf("messages sent ok           %" PRIu64 "\n", report.sent);
    std::printf("deliveries                 %" PRIu64 "\n", report.deliveries);
    std::printf("  of which redelivered     %" PRIu64 "\n", report.redeliveries);
    std::printf("acks ok                    %" PRIu64 "\n", report.acks);
    std::printf("acks cut short by a kill   %" PRIu64 " (counted as acks: nothing came back)\n", report.acks_in_doubt);
    std::printf("unconfirmed sends seen     %" PRIu64 " (sender died inside send)\n", report.unconfirmed);
    std::printf("sends refused (queue_full) %" PRIu64 " (full queue or pool: back-pressure)\n", report.refused);
    std::printf("refused yet delivered      %" PRIu64 "\n", report.refused_delivered);
    std::printf("kills: senders             %" PRIu64 "\n", figures_.sender_kills);
    std::printf("kills: receivers           %" PRIu64 "\n", figures_.receiver_kills);
    std::printf("kills: at fault points     %" PRIu64 "\n", figures_.fault_point_kills);
    std::printf("kills: processes, total    %" PRIu64 "\n", figures_.process_kills());
    std::printf("kills: daemon              %" PRIu64 "\n", figures_.daemon_kills);
    std::printf("SIGSTOP past deadline      %" PRIu64 " (receivers)\n", figures_.stops);
    std::printf("SIGSTOP: senders           %" PRIu64 "\n", figures_.sender_stops);
    std::printf("SIGSTOP: daemon            %" PRIu64 "\n", figures_.daemon_stops);
    std::printf("SIGSTOP: before reading    %" PRIu64 " (receivers stopped with a message taken, not read)\n",
                figures_.self_stops);
    std::printf("clean leaves               %" PRIu64 "\n", figures_.clean_leaves);
    std::printf("processes started          %" PRIu64 "\n", figures_.spawns);
    std::printf("abnormal exits             %" PRIu64 "\n", figures_.abnormal_exits);
    std::printf("closed while attached      %" PRIu64 " (slot kept until the process reconnects or exits)\n",
                daemon_log_lines_with("closed its connection while attached"));
    std::printf("reconnections              %" PRIu64 " (instances that resumed their slot)\n",
                daemon_log_lines_with(") reconnected"));
    std::printf("lost                       %" PRIu64 "\n", report.lost);
    std::printf("unflagged duplicates       %" PRIu64 "\n", report.unflagged_duplicates);
    std::printf("misrouted                  %" PRIu64 "\n", report.misrouted);
    std::printf("leaks                      %" PRIu64 "\n", leaks_);
    std::printf("dead letters               %" PRIu64 "\n", dead_letters_);
    std::printf("wedged processes           %" PRIu64 "\n", wedged_);
    for (const std::string& problem : report.problems) std::printf("PROBLEM: %s\n", problem.c_str());
    if (!report.passed()) ok = false;
    if (report.sent == 0) ok = fail("no message was sent");
    if (report.refused == 0) ok = fail("no send met a full queue or pool: exhaustion was not exercised");
    if (figures_.process_kills() < options_.min_kills) ok = fail("too few process kills");
    if (figures_.daemon_kills < options_.min_daemon_kills) ok = fail("too few daemon kills");
    if (figures_.abnormal_exits > 0) ok = fail("a child exited abnormally (could not connect or start)");
    std::printf("==== campaign %s ====\n", ok ? "PASSED" : "FAILED");
    if (!ok) {
      options_.keep = true;
      std::printf("histories and daemon log kept in %s\n", dir_.c_str());
    }
    return ok ? 0 : 1;
  }

 private:
  void write_config() {
    std::ofstream config(config_file_);
    config << "name: " << bus_ << "\n"
           << "bus:\n  max-instances: 64\n  size-classes:\n    - { size: 256, count: " << kSmallChunks << " }\n"
           << "    - { size: 4096, count: 64 }\n"
           << "services:\n  producer:\n    config:\n      sends: [order.placed, audit.note]\n";
    for (std::uint32_t type = 0; type < kReceiverTypes.size(); ++type) {
      std::string receives;
      for (const MessageKind& kind : kMessageKinds) {
        if (kind.target_mask >> type & 1u) receives += (receives.empty() ? "" : ", ") + std::string(kind.name);
      }
      config << "  " << kReceiverTypes[type] << ":\n    config:\n      receives: [" << receives << "]\n"
             << "      ack-timeout-ms: " << kAckTimeout.count() << "\n      delivery-limit: 255\n"
             << "      prefetch: 16\n      queue-capacity: " << (type == kAuditType ? kAuditQueue : 8192) << "\n";
    }
  }

  control::RuntimePaths paths() const {
    return control::runtime_paths(bus_, control::RuntimeDir{runtime_dir_, false}).value();
  }

  static double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
  }

  std::uint64_t daemon_log_lines_with(const std::string& text) const {
    std::ifstream log(dir_ / "exobusd.log");
    std::uint64_t count = 0;
    for (std::string line; std::getline(log, line);) count += line.find(text) != std::string::npos;
    return count;
  }

  // Prints the failure; returns false, for `ok = fail(...)`.
  bool fail(const char* what) {
    std::printf("FAILURE: %s\n", what);
    return false;
  }

  bool start_daemon() {
    const pid_t pid = ::fork();
    if (pid == -1) throw std::runtime_error("fork failed");
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      const std::string log_file = (dir_ / "exobusd.log").string();
      const int log = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
      if (log != -1) {
        ::dup2(log, STDOUT_FILENO);
        ::dup2(log, STDERR_FILENO);
      }
      const std::string config = config_file_.string(), runtime = runtime_dir_.string();
      const char* argv[] = {EXOBUSD_PATH, "--config", config.c_str(), "--bus", bus_.c_str(), "--runtime-dir",
                            runtime.c_str(), "--remove-segment", "--log-level", "info", nullptr};
      ::execv(EXOBUSD_PATH, const_cast<char* const*>(argv));
      ::_exit(127);
    }
    daemon_ = pid;
    const auto deadline = Clock::now() + 10s;
    while (Clock::now() < deadline) {
      if (::waitpid(daemon_, nullptr, WNOHANG) == daemon_) {
        daemon_ = -1;
        return false;
      }
      if (control::request_status(paths(), 500ms)) return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }

  void kill_daemon() {
    ::kill(daemon_, SIGKILL);
    daemon_stopped_until_.reset();
    ::waitpid(daemon_, nullptr, 0);
    daemon_ = -1;
    ++figures_.daemon_kills;
  }

  std::filesystem::path next_history(const char* role, std::uint64_t id) {
    return history_dir_ / (std::string(role) + "-" + std::to_string(id) + ".log");
  }

  void spawn(Child child) {
    const std::filesystem::path file =
        next_history(child.role == Role::sender ? "sender" : "receiver", child.plan.id);
    std::fflush(stdout);
    sigset_t terminate, previous;
    sigemptyset(&terminate);
    sigaddset(&terminate, SIGTERM);
    ::sigprocmask(SIG_BLOCK, &terminate, &previous);
    const pid_t pid = ::fork();
    if (pid != 0) ::sigprocmask(SIG_SETMASK, &previous, nullptr);
    if (pid == -1) throw std::runtime_error("fork failed");
    if (pid == 0) {
      become_child();
      int code = 99;
      try {
        code = child.role == Role::sender ? run_sender(bus_, runtime_dir_, file, child.plan)
                                          : run_receiver(bus_, runtime_dir_, file, child.plan);
      } catch (...) {
      }
      ::_exit(code);
    }
    child.pid = pid;
    children_.push_back(child);
    ++figures_.spawns;
  }

  std::uint32_t pick(std::uint32_t bound) { return static_cast<std::uint32_t>(random_() % bound); }
  bool chance(std::uint32_t percent) { return pick(100) < percent; }

  void spawn_sender(bool faulty) {
    Child child;
    child.role = Role::sender;
    child.plan.id = next_id_++;
    if (chance(25)) child.plan.burst = 300 + pick(700);
    if (faulty && chance(30)) {
      static constexpr shm::FaultPoint points[] = {shm::FaultPoint::allocate_claimed, shm::FaultPoint::send_committed,
                                                   shm::FaultPoint::push_claimed, shm::FaultPoint::push_recorded,
                                                   shm::FaultPoint::send_between_targets};
      child.plan.fault = points[pick(std::size(points))];
      child.plan.fault_hits = 1 + pick(300);
    }
    spawn(child);
  }

  void spawn_receiver(std::uint32_t type, bool faulty) {
    Child child;
    child.role = Role::receiver;
    child.plan.id = next_id_++;
    child.plan.type = type;
    if (faulty) {
      if (chance(25)) {
        static constexpr shm::FaultPoint points[] = {shm::FaultPoint::take_claimed, shm::FaultPoint::take_leased,
                                                     shm::FaultPoint::ack_cleared, shm::FaultPoint::reclaim_marked,
                                                     shm::FaultPoint::reclaim_pushed, shm::FaultPoint::delivery_taken};
        child.plan.fault = points[pick(std::size(points))];
        child.plan.fault_hits = 1 + pick(200);
        // There it stops itself instead, having taken a message it has not read yet; the
        // runner continues it past the ack deadline (see reap_and_refill).
        if (child.plan.fault == shm::FaultPoint::delivery_taken) child.plan.fault_action = shm::FaultAction::stop_process;
      }
      if (chance(30)) child.plan.slow_ms = 1 + pick(30);
      if (chance(30)) child.plan.lifetime_ms = 100 + pick(900);  // attaches, works a little, leaves
      if (chance(30)) child.plan.release_permille = 5 + pick(30);
    }
    spawn(child);
  }

  // Reaps exited children; each slot is refilled with a new process (new history), except a
  // sender's once quiescing began: a sender started then would never be told to stop.
  void reap_and_refill(bool faulty) {
    for (std::size_t k = 0; k < children_.size();) {
      Child& child = children_[k];
      int status = 0;
      if (::waitpid(child.pid, &status, WNOHANG | WUNTRACED) != child.pid) {
        ++k;
        continue;
      }
      if (WIFSTOPPED(status)) {
        if (!child.stopped_until) {  // stopped itself at its fault point
          child.stopped_until = Clock::now() + kStopPastDeadline + std::chrono::milliseconds(pick(400));
          ++figures_.self_stops;
        }
        ++k;
        continue;
      }
      if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && !child.killed_by_us) {
        ++figures_.fault_point_kills;  // the child killed itself at its armed fault point
      } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        if (child.role == Role::receiver) ++figures_.clean_leaves;  // a sender only exits 0 when told to stop
      } else if (!child.killed_by_us) {
        ++figures_.abnormal_exits;
        std::printf("campaign: child %d (%s %" PRIu64 ") ended abnormally, status 0x%x\n", child.pid,
                    child.role == Role::sender ? "sender" : "receiver", child.plan.id, status);
      }
      const Role role = child.role;
      const std::uint32_t type = child.plan.type;
      children_.erase(children_.begin() + static_cast<std::ptrdiff_t>(k));
      if (role == Role::sender) {
        if (!quiescing_) spawn_sender(faulty);
      } else {
        spawn_receiver(type, faulty);
      }
    }
  }

  Child* random_child(Role role) {
    std::vector<Child*> candidates;
    for (Child& child : children_) {
      if (child.role == role && !child.killed_by_us) candidates.push_back(&child);
    }
    return candidates.empty() ? nullptr : candidates[pick(static_cast<std::uint32_t>(candidates.size()))];
  }

  void continue_due(bool all) {
    if (daemon_stopped_until_ && (all || Clock::now() >= *daemon_stopped_until_)) {
      ::kill(daemon_, SIGCONT);
      daemon_stopped_until_.reset();
    }
    for (Child& child : children_) {
      if (child.stopped_until && (all || Clock::now() >= *child.stopped_until)) {
        ::kill(child.pid, SIGCONT);
        child.stopped_until.reset();
      }
    }
  }

  void fault_phase(Clock::time_point start) {
    const double max_s = std::max(options_.max_duration_s, options_.duration_s);
    std::uint64_t faults = 0;
    for (;;) {
      const double elapsed = seconds_since(start);
      const bool quota = figures_.process_kills() >= options_.min_kills &&
                         figures_.daemon_kills >= options_.min_daemon_kills;
      if (elapsed >= max_s || (elapsed >= options_.duration_s && quota)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(40 + pick(120)));
      continue_due(false);
      reap_and_refill(true);

      // Daemon kills are paced to reach their quota by the end of the planned duration.
      const double daemon_pace = options_.min_daemon_kills > 0
                                     ? options_.min_daemon_kills * 1.2 / (options_.duration_s + 1) * elapsed
                                     : 0;
      const std::uint32_t roll = pick(100);
      ++faults;
      if (figures_.daemon_kills < daemon_pace || roll < 4) {
        kill_daemon();
        std::this_thread::sleep_for(std::chrono::milliseconds(pick(200)));
        if (!start_daemon()) {
          std::printf("campaign: exobusd did not restart\n");
          return;
        }
      } else if (roll < 40) {
        if (Child* child = random_child(Role::receiver)) {
          ::kill(child->pid, SIGKILL);
          child->killed_by_us = true;
          ++figures_.receiver_kills;
        }
      } else if (roll < 70) {
        if (Child* child = random_child(Role::sender)) {
          ::kill(child->pid, SIGKILL);
          child->killed_by_us = true;
          ++figures_.sender_kills;
        }
      } else if (roll < 80) {
        Child* child = random_child(Role::receiver);
        if (child != nullptr && !child->stopped_until) {
          ::kill(child->pid, SIGSTOP);
          child->stopped_until = Clock::now() + kStopPastDeadline + std::chrono::milliseconds(pick(400));
          ++figures_.stops;
        }
      } else if (roll < 84) {
        // A hung sender, maybe inside a push: consumers of that queue must wait for it, not
        // lose or corrupt anything.
        Child* child = random_child(Role::sender);
        if (child != nullptr && !child->stopped_until) {
          ::kill(child->pid, SIGSTOP);
          child->stopped_until = Clock::now() + std::chrono::milliseconds(100 + pick(1000));
          ++figures_.sender_stops;
        }
      } else if (roll < 87 && !daemon_stopped_until_) {
        // A hung daemon: the data path goes on without it; registrations wait or time out.
        ::kill(daemon_, SIGSTOP);
        daemon_stopped_until_ = Clock::now() + std::chrono::milliseconds(200 + pick(1500));
        ++figures_.daemon_stops;
      }  // else: a quiet moment
      if (faults % 50 == 0) {
        std::printf("campaign: %.0f s, %" PRIu64 " process kills (%" PRIu64 " at fault points), %" PRIu64
                    " daemon kills, %" PRIu64 " stops\n",
                    elapsed, figures_.process_kills(), figures_.fault_point_kills, figures_.daemon_kills,
                    figures_.stops);
        std::fflush(stdout);
      }
    }
  }

  // Stops the faults, stops the senders, keeps every receiver running (refilling leavers
  // with steady ones) and waits until every queue is empty and nothing is in flight.
  bool quiesce() {
    quiescing_ = true;
    continue_due(true);
    for (Child& child : children_) {
      if (child.role == Role::sender) ::kill(child.pid, SIGTERM);
    }
    // Reap senders and refill receivers (steady now). A sender still running at the bound
    // is wedged: its threads' stacks are printed, then it is killed like any other (the
    // bus must cope), so that the checks below still see a drained bus.
    const auto senders_deadline = Clock::now() + 10s;
    for (;;) {
      continue_due(false);  // receivers that stop themselves at their fault point go on
      reap_and_refill(false);
      const bool senders_left = std::any_of(children_.begin(), children_.end(),
                                            [](const Child& child) { return child.role == Role::sender; });
      if (!senders_left) break;
      if (Clock::now() > senders_deadline) {
        for (Child& child : children_) {
          if (child.role != Role::sender || child.killed_by_us) continue;
          std::printf("FAILURE: sender %" PRIu64 " (pid %d) did not stop within 10 s of SIGTERM (wedged)\n",
                      child.plan.id, child.pid);
          print_stacks(child.pid);
          ::kill(child.pid, SIGKILL);
          child.killed_by_us = true;
          ++wedged_;
        }
      }
      std::this_thread::sleep_for(10ms);
    }

    struct Progress {
      std::uint64_t delivered = 0;
      Clock::time_point since;
    };
    std::map<std::int64_t, Progress> progress;  // per receiver pid
    const auto deadline = Clock::now() + kQuiesceBound;
    unsigned quiet_polls = 0;
    std::string last_status;
    while (Clock::now() < deadline) {
      continue_due(false);  // receivers that stop themselves at their fault point go on
      reap_and_refill(false);
      // Churned-out receivers are refilled steady; the steady ones stay.
      const auto status = control::request_status(paths(), 1000ms);
      if (!status) {
        std::this_thread::sleep_for(100ms);
        continue;
      }
      last_status = status.value().str();
      const rapidjson::Document document = status.value().document();
      std::uint64_t busy = document["pool"]["in_use"].GetUint64();
      std::uint64_t dead = 0;
      for (const auto& type : document["service_types"].GetArray()) {
        const std::uint64_t queued = type["queued"].GetUint64();
        busy += queued + type["in_flight"].GetUint64();
        dead += type["dead_lettered"].GetUint64();
        for (const auto& instance : type["instances"].GetArray()) {
          const std::int64_t pid = instance["pid"].GetInt64();
          const std::uint64_t delivered = instance["delivered"].GetUint64();
          auto [entry, fresh] = progress.try_emplace(pid, Progress{delivered, Clock::now()});
          if (fresh || entry->second.delivered != delivered || queued == 0) {
            entry->second = Progress{delivered, Clock::now()};
          } else if (Clock::now() - entry->second.since > kWedgeBound) {
            std::printf("FAILURE: receiver pid %" PRId64 " of '%s' got nothing for %lld s while %" PRIu64
                        " messages were queued (wedged)\n",
                        pid, type["name"].GetString(), static_cast<long long>(kWedgeBound.count()), queued);
            ++wedged_;
            entry->second.since = Clock::now();
          }
        }
      }
      dead_letters_ = dead;
      if (busy == 0) {
        if (++quiet_polls >= 3) break;
      } else {
        quiet_polls = 0;
      }
      std::this_thread::sleep_for(200ms);
    }
    if (quiet_polls < 3) {
      ++leaks_;
      std::printf("FAILURE: the bus did not quiesce within %lld s; last status:\n%s\n",
                  static_cast<long long>(kQuiesceBound.count()), last_status.c_str());
      return false;
    }
    std::printf("campaign: quiet (pool in_use 0, every queue empty, nothing in flight)\n");
    if (dead_letters_ > 0) std::printf("FAILURE: %" PRIu64 " messages were dead-lettered\n", dead_letters_);
    return wedged_ == 0 && dead_letters_ == 0;
  }

  // What a wedged process is doing: each thread's user stack (gdb, when installed) and
  // kernel stack.
  static void print_stacks(pid_t pid) {
    std::fflush(stdout);
    const std::string id = std::to_string(pid);
    const std::string command = "command -v gdb >/dev/null && timeout 60 gdb -q -nx -batch -p " + id +
                                " -ex 'thread apply all bt' 2>&1 | grep -v '^\\[New LWP'; "
                                "for task in /proc/" + id + "/task/*; do echo \"$task: $(cat $task/comm) "
                                "$(cut -d' ' -f3 $task/stat) $(cat $task/wchan)\"; cat $task/stack; done 2>&1";
    if (std::system(command.c_str()) != 0) std::printf("(could not read the stacks of pid %d)\n", pid);
    std::fflush(stdout);
  }

  static void stop_process(pid_t pid) {
    if (pid <= 0) return;
    ::kill(pid, SIGCONT);
    ::kill(pid, SIGTERM);
    const auto deadline = Clock::now() + 5s;
    while (Clock::now() < deadline) {
      const pid_t done = ::waitpid(pid, nullptr, WNOHANG);
      if (done == pid || (done == -1 && errno == ECHILD)) return;
      std::this_thread::sleep_for(5ms);
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }

  Options options_;
  std::mt19937_64 random_;
  std::string bus_;
  std::filesystem::path dir_, runtime_dir_, history_dir_, config_file_;
  pid_t daemon_ = -1;
  std::optional<Clock::time_point> daemon_stopped_until_;  // SIGSTOPped, to be continued then
  std::vector<Child> children_;
  std::uint64_t next_id_ = 1;
  Figures figures_;
  std::uint64_t leaks_ = 0, dead_letters_ = 0, wedged_ = 0;
  bool quiescing_ = false;  // senders are being stopped: none is started any more
};

Options parse(int argc, char** argv) {
  Options options;
  options.seed = std::random_device{}() ^ (static_cast<std::uint64_t>(::getpid()) << 32);
  for (int k = 1; k < argc; ++k) {
    const std::string arg = argv[k];
    const auto value = [&]() -> std::string {
      if (k + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
      return argv[++k];
    };
    if (arg == "--seed") options.seed = std::stoull(value());
    else if (arg == "--duration") options.duration_s = std::stod(value());
    else if (arg == "--max-duration") options.max_duration_s = std::stod(value());
    else if (arg == "--min-kills") options.min_kills = std::stoull(value());
    else if (arg == "--min-daemon-kills") options.min_daemon_kills = std::stoull(value());
    else if (arg == "--senders") options.senders = static_cast<unsigned>(std::stoul(value()));
    else if (arg == "--receivers") options.receivers = static_cast<unsigned>(std::stoul(value()));
    else if (arg == "--keep") options.keep = true;
    else if (arg == "--check") options.check_only = value();
    else throw std::invalid_argument("unknown option " + arg);
  }
  return options;
}

int check_only(const std::filesystem::path& directory) {
  const CheckReport report = check(read_histories(directory));
  std::printf("sent %" PRIu64 ", deliveries %" PRIu64 " (%" PRIu64 " redelivered), acks %" PRIu64
              ", lost %" PRIu64 ", unflagged duplicates %" PRIu64 ", misrouted %" PRIu64 "\n",
              report.sent, report.deliveries, report.redeliveries, report.acks, report.lost,
              report.unflagged_duplicates, report.misrouted);
  for (const std::string& problem : report.problems) std::printf("PROBLEM: %s\n", problem.c_str());
  return report.passed() ? 0 : 1;
}

}  // namespace
}  // namespace exobus::campaign

int main(int argc, char** argv) {
  using namespace exobus::campaign;
  try {
    const Options options = parse(argc, argv);
    if (!options.check_only.empty()) return check_only(options.check_only);
    ::signal(SIGPIPE, SIG_IGN);
    Campaign campaign(options);
    return campaign.run();
  } catch (const std::exception& error) {
    std::fprintf(stderr, "exobus_campaign: %s\n", error.what());
    return 2;
  }
}
