#include "exobus_scenarios.hpp"

#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <new>
#include <sstream>
#include <thread>

#include "exobus_daemon.hpp"
#include "report.hpp"

namespace exobus::bench {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kPayload = 64;
constexpr int kMaxSides = 8;

// What the processes of one scenario share: an anonymous MAP_SHARED mapping made before fork.
struct Board {
  std::atomic<int> ready{0};  // sides that connected
  std::atomic<int> go{0};     // set by the coordinator once all are ready
  std::atomic<std::uint64_t> sent_total{~std::uint64_t{0}};  // the sender's count, once done
  std::atomic<std::uint64_t> received{0};                    // over all receivers
  struct Side {
    std::atomic<int> finished{0};
    bool ok = false;
    char error[200] = {};
    std::uint64_t messages = 0, seq_sum = 0;
    std::int64_t first_ns = 0, last_ns = 0;  // steady_clock, comparable across processes
    double seconds = 0, cpu_seconds = 0;
  } sides[kMaxSides];
};

std::int64_t now_ns() { return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count(); }

double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

void pin(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  ::sched_setaffinity(0, sizeof set, &set);
}

// The same JSON string payload as the exobus rows: seq in hex at both ends, flag at 17.
std::string json_payload(std::uint64_t seq, bool last) {
  std::string s(kPayload, 'a');
  char head[20];
  std::snprintf(head, sizeof head, "%016llx", static_cast<unsigned long long>(seq));
  s[0] = '"';
  std::memcpy(&s[1], head, 16);
  s[17] = last ? '1' : '0';
  std::memcpy(&s[kPayload - 17], head, 16);
  s[kPayload - 1] = '"';
  return s;
}
bool parse_payload(const std::string& s, std::uint64_t& seq, bool& last) {
  if (s.size() != kPayload) return false;
  unsigned long long head = 0, tail = 0;
  if (std::sscanf(s.c_str() + 1, "%16llx", &head) != 1 || std::sscanf(s.c_str() + kPayload - 17, "%16llx", &tail) != 1)
    return false;
  seq = head;
  last = s[17] == '1';
  return head == tail;
}

using SideBody = std::function<void(Board&, Board::Side&)>;

// Forks one process per side (pinned as given), releases them together once all connected,
// and waits for all (killing all on a failure or after the deadline). Returns the error or "".
std::string run_sides(Board& board, const std::vector<std::pair<int, SideBody>>& sides, std::chrono::milliseconds deadline) {
  std::vector<pid_t> pids;
  std::fflush(nullptr);
  for (std::size_t i = 0; i < sides.size(); ++i) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      pin(sides[i].first);
      Board::Side& me = board.sides[i];
      try {
        sides[i].second(board, me);
        me.ok = true;
      } catch (const std::exception& e) {
        std::snprintf(me.error, sizeof me.error, "%s", e.what());
      }
      me.finished.store(1, std::memory_order_release);
      ::_exit(0);
    }
    pids.push_back(pid);
  }
  const auto until = Clock::now() + deadline;
  std::string error;
  bool released = false;
  for (;;) {
    if (!released && board.ready.load(std::memory_order_acquire) == int(sides.size())) {
      board.go.store(1, std::memory_order_release);
      released = true;
    }
    bool all = true;
    for (std::size_t i = 0; i < sides.size(); ++i) {
      const auto& s = board.sides[i];
      if (s.finished.load(std::memory_order_acquire) == 0) {
        all = false;
      } else if (!s.ok && error.empty()) {
        error = s.error;
      }
    }
    if (all || !error.empty()) break;
    if (Clock::now() > until) {
      error = "timed out";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (pid_t pid : pids) {
    if (!error.empty()) ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  return error;
}

void wait_for_go(Board& board) {
  board.ready.fetch_add(1, std::memory_order_acq_rel);
  while (board.go.load(std::memory_order_acquire) == 0) std::this_thread::sleep_for(std::chrono::microseconds(100));
}

struct SharedBoard {
  Board* board;
  SharedBoard() {
    void* p = ::mmap(nullptr, sizeof(Board), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw TransportError("mmap failed");
    board = new (p) Board;
  }
  ~SharedBoard() { ::munmap(board, sizeof(Board)); }
};

std::string bus_yml(int types, const std::string& extra_receiver_keys = {}) {
  std::string yml = "name: bench\nbus:\n  max-instances: 16\n  size-classes:\n" + size_classes_yaml(kPayload, 65536) +
                    "services:\n  bench-sender:\n    config:\n      sends: [bench.msg]\n";
  for (int t = 0; t < types; ++t)
    yml += "  bench-r" + std::to_string(t) +
           ":\n    config:\n      receives: [bench.msg]\n      queue-capacity: 65536\n      prefetch: 256\n" +
           extra_receiver_keys;
  return yml;
}

// A receiver that checks its messages arrive in increasing order (strictly consecutive when it
// is the type's only instance). The only instance of its type stops at the message flagged
// last; one of several stops when all of them together received what the sender sent.
SideBody receiver_side(const RunBus& bus, std::string type, bool only_instance) {
  return [&bus, type, only_instance](Board& board, Board::Side& me) {
    auto service = bus.connect(type, WaitMode::adaptive);
    std::atomic<int> done{0};
    std::string error;
    std::uint64_t next = 0;
    bool any = false;
    service->on("bench.msg", [&](Delivery& d) {
      std::uint64_t seq = 0;
      bool last = false;
      if (!parse_payload(d.message().payload, seq, last) || (only_instance ? seq != next : (any && seq < next))) {
        if (error.empty()) error = "message out of order or torn (expected " + std::to_string(next) + ")";
        done.store(1, std::memory_order_release);
        return;
      }
      if (!any) me.first_ns = now_ns();
      any = true;
      me.last_ns = now_ns();
      next = seq + 1;
      ++me.messages;
      me.seq_sum += seq;
      if (only_instance) {
        if (last) done.store(1, std::memory_order_release);
        return;
      }
      const std::uint64_t total = board.received.fetch_add(1, std::memory_order_acq_rel) + 1;
      if (total == board.sent_total.load(std::memory_order_acquire)) done.store(1, std::memory_order_release);
    });
    if (Result<void> started = service->start(); !started) throw TransportError(started.error().message);
    wait_for_go(board);
    // The last message may land on the other instance: also check the shared count here.
    while (done.load(std::memory_order_acquire) == 0 &&
           (only_instance || board.received.load(std::memory_order_acquire) !=
                                 board.sent_total.load(std::memory_order_acquire)))
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    service->stop();
    if (!error.empty()) throw TransportError(error);
  };
}

// The sender: `burst` messages as fast as it can, or (burst == 0) for `duration`.
SideBody sender_side(const RunBus& bus, std::size_t burst, std::chrono::duration<double> duration) {
  return [&bus, burst, duration](Board& board, Board::Side& me) {
    auto service = bus.connect("bench-sender", WaitMode::adaptive);
    std::string buf = json_payload(0, false);
    wait_for_go(board);
    const auto begin = Clock::now();
    const double cpu0 = thread_cpu_seconds();
    const auto end = begin + std::chrono::duration_cast<Clock::duration>(duration);
    std::uint64_t seq = 0;
    for (;; ++seq) {
      const bool last = burst ? seq + 1 == burst : ((seq & 255) == 255 && Clock::now() >= end);
      char head[20];
      std::snprintf(head, sizeof head, "%016llx", static_cast<unsigned long long>(seq));
      std::memcpy(&buf[1], head, 16);
      buf[17] = last ? '1' : '0';
      std::memcpy(&buf[kPayload - 17], head, 16);
      if (Result<void> sent = service->send("bench.msg", buf); !sent) throw TransportError(sent.error().message);
      if (last) break;
    }
    me.cpu_seconds = thread_cpu_seconds() - cpu0;
    me.seconds = std::chrono::duration<double>(Clock::now() - begin).count();
    me.messages = seq + 1;
    board.sent_total.store(seq + 1, std::memory_order_release);
    service->stop();
  };
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}


// utime + stime of a process, in seconds (/proc/<pid>/stat fields 14 and 15).
double process_cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return double(utime + stime) / double(::sysconf(_SC_CLK_TCK));
}

}  // namespace

ScenarioResults run_exobus_scenarios(const ScenarioParams& params) {
  ScenarioResults out;
  std::vector<double> fan_rate[2], fan_cpu[2], comp_rate, comp_share;
  int tag = 0;
  const std::string run_id = std::to_string(::getpid());

  for (int rep = 1; rep <= params.reps; ++rep) {
    for (int k = 0; k < 2; ++k) {
      const int types = k == 0 ? 1 : 4;
      RunBus bus;
      SharedBoard shared;
      std::string error;
      try {
        bus.start(run_id + "-s" + std::to_string(tag++), bus_yml(types));
        std::vector<std::pair<int, SideBody>> sides;
        sides.emplace_back(params.pinning.producer_cpu, sender_side(bus, params.burst, {}));
        for (int t = 0; t < types; ++t)
          sides.emplace_back(params.pinning.consumer_cpu, receiver_side(bus, "bench-r" + std::to_string(t), true));
        error = run_sides(*shared.board, sides, params.timeout);
        const auto& s = shared.board->sides[0];
        if (error.empty()) {
          for (int t = 1; t <= types; ++t)
            if (shared.board->sides[t].messages != params.burst) error = "a receiving type missed messages";
        }
        if (error.empty()) {
          fan_rate[k].push_back(double(s.messages) / s.seconds);
          fan_cpu[k].push_back(s.cpu_seconds / double(s.messages) * 1e9);
        }
      } catch (const std::exception& e) {
        error = e.what();
      }
      bus.stop();
      std::fprintf(stderr, "  rep %d fan-out    exobus %d type(s): %s\n", rep, types,
                   error.empty() ? (si(fan_rate[k].back()) + " msg/s sent").c_str() : ("FAILED: " + error).c_str());
      if (!error.empty()) out.failures.push_back("fan-out to " + std::to_string(types) + " types rep " + std::to_string(rep) + ": " + error);
    }
    // Competing instances: the receiving processes stop when the shared count reaches what the
    // sender sent, whichever instance took the last message.
    {
      RunBus bus;
      SharedBoard shared;
      std::string error;
      try {
        bus.start(run_id + "-s" + std::to_string(tag++), bus_yml(1));
        std::vector<std::pair<int, SideBody>> sides;
        sides.emplace_back(params.pinning.producer_cpu, sender_side(bus, 0, params.duration));
        sides.emplace_back(params.pinning.consumer_cpu, receiver_side(bus, "bench-r0", false));
        sides.emplace_back(params.pinning.consumer_cpu, receiver_side(bus, "bench-r0", false));
        error = run_sides(*shared.board, sides, params.timeout);
        const auto& a = shared.board->sides[1];
        const auto& b = shared.board->sides[2];
        const std::uint64_t n = shared.board->sides[0].messages;
        if (error.empty() && (a.messages + b.messages != n || a.seq_sum + b.seq_sum != n * (n - 1) / 2))
          error = "messages lost or delivered twice (" + std::to_string(a.messages + b.messages) + " of " + std::to_string(n) + ")";
        if (error.empty() && (a.messages == 0 || b.messages == 0)) error = "one instance received nothing";
        if (error.empty()) {
          const double span = double(std::max(a.last_ns, b.last_ns) - std::min(a.first_ns, b.first_ns)) / 1e9;
          comp_rate.push_back(double(n - 1) / span);
          comp_share.push_back(double(std::min(a.messages, b.messages)) / double(n));
        }
      } catch (const std::exception& e) {
        error = e.what();
      }
      bus.stop();
      std::fprintf(stderr, "  rep %d competing  exobus 2 instances: %s\n", rep,
                   error.empty() ? (si(comp_rate.back()) + " msg/s").c_str() : ("FAILED: " + error).c_str());
      if (!error.empty()) out.failures.push_back("competing instances rep " + std::to_string(rep) + ": " + error);
    }
  }

  // Idle: once per wait mode (the window is long; its figure is a CPU time, not a rate).
  struct Idle { const char* mode; WaitMode wait; double service_s = -1, daemon_s = -1; std::string error; };
  std::vector<Idle> idles{{"adaptive", WaitMode::adaptive, -1, -1, {}}, {"sleep", WaitMode::sleep, -1, -1, {}}};
  for (Idle& idle : idles) {
    RunBus bus;
    SharedBoard shared;
    pid_t child = -1;
    try {
      bus.start(run_id + "-s" + std::to_string(tag++), bus_yml(1));
      Board& board = *shared.board;
      std::fflush(nullptr);
      child = ::fork();
      if (child == 0) {
        pin(params.pinning.consumer_cpu);
        try {
          auto service = bus.connect("bench-r0", idle.wait);
          service->on("bench.msg", [](Delivery&) {});
          if (service->start()) board.ready.store(1, std::memory_order_release);
          for (;;) ::pause();
        } catch (...) {
        }
        ::_exit(1);
      }
      const auto until = Clock::now() + std::chrono::seconds(10);
      while (board.ready.load(std::memory_order_acquire) == 0 && Clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      if (board.ready.load() == 0) throw TransportError("the idle service did not start");
      // Past the adaptive spin/yield phase and the connection's own work.
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      const double s0 = process_cpu_seconds(child), d0 = process_cpu_seconds(bus.daemon_pid());
      std::this_thread::sleep_for(std::chrono::duration_cast<std::chrono::milliseconds>(params.idle));
      idle.service_s = process_cpu_seconds(child) - s0;
      idle.daemon_s = process_cpu_seconds(bus.daemon_pid()) - d0;
    } catch (const std::exception& e) {
      idle.error = e.what();
    }
    if (child > 0) {
      ::kill(child, SIGKILL);
      ::waitpid(child, nullptr, 0);
    }
    bus.stop();
    std::fprintf(stderr, "  idle       exobus %s: %s\n", idle.mode,
                 idle.error.empty() ? (fmt("%.3f", idle.service_s * 1e3) + " ms CPU").c_str() : ("FAILED: " + idle.error).c_str());
    if (!idle.error.empty()) out.failures.push_back(std::string("idle ") + idle.mode + ": " + idle.error);
  }

  std::ostringstream o;
  o << "\n## ExoBus scenarios\n\n"
    << "Client library, real exobusd, 64 B JSON payloads, every service in adaptive wait mode unless "
       "named; medians of " << params.reps << " repetitions.\n\n"
    << "**Fan-out.** One sender sends a burst of " << params.burst
    << " messages to N receiving service types (one instance each, own process, all on the consumer CPU); the "
       "queues and the pool hold the whole burst, so the sender never waits for a receiver. "
       "Sender cost = its wall time and its thread's CPU time per message.\n\n"
    << "| receiving types | sender msg/s | sender CPU ns/msg | cost × 1 type (wall / CPU) |\n"
    << "|---:|---:|---:|---:|\n";
  const double r1 = median(fan_rate[0]), c1 = median(fan_cpu[0]);
  for (int k = 0; k < 2; ++k) {
    const int types = k == 0 ? 1 : 4;
    if (fan_rate[k].empty()) {
      o << "| " << types << " | failed | | |\n";
      continue;
    }
    const double r = median(fan_rate[k]), c = median(fan_cpu[k]);
    o << "| " << types << " | " << si(r) << " | " << fmt("%.0f", c) << " | "
      << (r1 > 0 ? fmt("%.2f", r1 / r) : "—") << " / " << (c1 > 0 ? fmt("%.2f", c / c1) : "—") << " |\n";
    out.summary_csv.push_back("exobus_fanout," + std::to_string(kPayload) + ",exobus-" + std::to_string(types) +
                              "-types,sender_msgs_per_s," + fmt("%g", r) + "," +
                              fmt("%g", *std::min_element(fan_rate[k].begin(), fan_rate[k].end())) + "," +
                              fmt("%g", *std::max_element(fan_rate[k].begin(), fan_rate[k].end())) + "," +
                              std::to_string(fan_rate[k].size()) + ",,");
    out.summary_csv.push_back("exobus_fanout," + std::to_string(kPayload) + ",exobus-" + std::to_string(types) +
                              "-types,sender_cpu_ns_per_msg," + fmt("%g", c) + "," +
                              fmt("%g", *std::min_element(fan_cpu[k].begin(), fan_cpu[k].end())) + "," +
                              fmt("%g", *std::max_element(fan_cpu[k].begin(), fan_cpu[k].end())) + "," +
                              std::to_string(fan_cpu[k].size()) + ",,");
  }
  o << "\n**Competing instances.** One sender streams for " << fmt("%.2f", params.duration.count())
    << " s to one service type run by two instances (two processes sharing the consumer CPU) that take from "
       "its one queue; each message must reach exactly one of them.\n\n"
    << "| instances | msg/s, both together | smaller instance's share |\n|---:|---:|---:|\n";
  if (comp_rate.empty()) {
    o << "| 2 | failed | |\n";
  } else {
    o << "| 2 | " << si(median(comp_rate)) << " | " << fmt("%.0f%%", 100 * median(comp_share)) << " |\n";
    out.summary_csv.push_back("exobus_competing,64,exobus-2-instances,msgs_per_s," + fmt("%g", median(comp_rate)) + "," +
                              fmt("%g", *std::min_element(comp_rate.begin(), comp_rate.end())) + "," +
                              fmt("%g", *std::max_element(comp_rate.begin(), comp_rate.end())) + "," +
                              std::to_string(comp_rate.size()) + ",,");
  }
  o << "\n**Idle.** A service attached with a handler and nothing to receive, for "
    << fmt("%.0f", params.idle.count()) << " s after a 0.5 s settling time; CPU = utime + stime from "
       "/proc/<pid>/stat (clock ticks of " << fmt("%.0f", 1000.0 / double(::sysconf(_SC_CLK_TCK))) << " ms).\n\n"
    << "| wait mode | service CPU ms | share of a core | exobusd CPU ms, same window |\n|---|---:|---:|---:|\n";
  for (const Idle& idle : idles) {
    if (!idle.error.empty()) {
      o << "| " << idle.mode << " | failed | | |\n";
      continue;
    }
    o << "| " << idle.mode << " | " << fmt("%.0f", idle.service_s * 1e3) << " | "
      << fmt("%.2f%%", 100 * idle.service_s / params.idle.count()) << " | " << fmt("%.0f", idle.daemon_s * 1e3) << " |\n";
    out.summary_csv.push_back(std::string("exobus_idle,0,exobus-") + idle.mode + ",cpu_ms," + fmt("%g", idle.service_s * 1e3) +
                              "," + fmt("%g", idle.service_s * 1e3) + "," + fmt("%g", idle.service_s * 1e3) + ",1,,");
  }
  out.markdown = o.str();
  return out;
}

}  // namespace exobus::bench
