#include "process_pair.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace exobus::bench {

std::string Pinning::describe() const {
  if (producer_cpu < 0) return "not pinned (fewer than two usable CPUs)";
  return "producer/client pinned to CPU " + std::to_string(producer_cpu) +
         ", consumer/server to CPU " + std::to_string(consumer_cpu);
}

Pinning choose_pinning() {
  cpu_set_t set;
  CPU_ZERO(&set);
  Pinning p;
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return p;
  int found[2];
  int n = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE && n < 2; ++cpu)
    if (CPU_ISSET(cpu, &set)) found[n++] = cpu;
  if (n == 2) {
    p.producer_cpu = found[0];
    p.consumer_cpu = found[1];
  }
  return p;
}

namespace {

using Clock = std::chrono::steady_clock;

void pin_to(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  // Before the transport is opened, so threads it starts (ZeroMQ's I/O thread) inherit it.
  if (::sched_setaffinity(0, sizeof set, &set) != 0) std::perror("sched_setaffinity");
}

void write_all(int fd, const void* p, std::size_t n) {
  const auto* b = static_cast<const char*>(p);
  while (n > 0) {
    const ssize_t w = ::write(fd, b, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    b += w;
    n -= static_cast<std::size_t>(w);
  }
}

struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw TransportError("pipe2 failed");
    r = fds[0];
    w = fds[1];
  }
  ~Pipe() { close_both(); }
  void close_both() {
    if (r >= 0) ::close(r);
    if (w >= 0) ::close(w);
    r = w = -1;
  }
};

struct Child {
  pid_t pid = -1;
  Pipe report;
  SideReport got;
  bool reported = false;
  bool exited = false;
};

// The child never returns: it reports and leaves with _exit so nothing the coordinator set up
// (atexit handlers, stdio buffers) runs twice.
[[noreturn]] void child_main(Transport& t, int cpu, const SideMain& main, int ready_w, int go_r,
                             int report_w) {
  pin_to(cpu);
  // A peer that dies must show up as an error from write(), which this side can report,
  // not as a silent SIGPIPE death.
  ::signal(SIGPIPE, SIG_IGN);
  SideReport rep;
  const std::function<void()> start = [&] {
    const char c = 1;
    write_all(ready_w, &c, 1);
    char g;
    while (::read(go_r, &g, 1) < 0 && errno == EINTR) {
    }
  };
  try {
    main(t, start, rep);
    rep.ok = true;
  } catch (const std::exception& e) {
    rep.ok = false;
    std::snprintf(rep.error, sizeof rep.error, "%s", e.what());
  }
  write_all(report_w, &rep, sizeof rep);
  std::fflush(nullptr);
  ::_exit(0);
}

}  // namespace

PairResult run_pair(Transport& transport, const ChannelSpec& spec, const Pinning& pinning,
                    const SideMain& producer, const SideMain& consumer,
                    std::chrono::milliseconds deadline) {
  PairResult result;
  try {
    transport.prepare(spec);
  } catch (const std::exception& e) {
    transport.cleanup();
    result.error = e.what();
    return result;
  }

  Pipe ready, go;
  std::array<Child, 2> kids;  // [0] consumer, [1] producer
  const SideMain* mains[2] = {&consumer, &producer};
  const int cpus[2] = {pinning.consumer_cpu, pinning.producer_cpu};
  std::fflush(nullptr);
  for (int i = 0; i < 2; ++i) {
    kids[i].pid = ::fork();
    if (kids[i].pid == 0) {
      // Only the coordinator may hold the other side's report pipe, so that its death shows up
      // as a hang-up instead of a timeout.
      kids[1 - i].report.close_both();
      child_main(transport, cpus[i], *mains[i], ready.w, go.r, kids[i].report.w);
    }
    if (kids[i].pid < 0) result.error = "fork failed";
    ::close(kids[i].report.w);
    kids[i].report.w = -1;
  }

  const auto until = Clock::now() + deadline;
  auto fail = [&](std::string why) {
    if (result.error.empty()) result.error = std::move(why);
  };

  // Start barrier: both sides have opened their ends (sockets connected, segment mapped).
  int ready_count = 0;
  while (result.error.empty() && ready_count < 2) {
    pollfd p{ready.r, POLLIN, 0};
    const int n = ::poll(&p, 1, 100);
    if (n > 0) {
      char c;
      if (::read(ready.r, &c, 1) == 1) ++ready_count;
    }
    for (auto& k : kids)
      if (!k.exited && k.pid > 0 && ::waitpid(k.pid, nullptr, WNOHANG) == k.pid) k.exited = true;
    if (kids[0].exited || kids[1].exited) {
      // A side gave up while opening; its report (if any) says why.
      break;
    }
    if (Clock::now() > until) fail("timed out waiting for both sides to open");
  }
  if (ready_count == 2) {
    const char g[2] = {1, 1};
    write_all(go.w, g, 2);
  }

  // Collect both reports; a failed side means the other may wait forever, so stop it.
  for (;;) {
    pollfd fds[2];
    nfds_t n = 0;
    Child* owners[2];
    for (auto& k : kids)
      if (!k.reported && k.report.r >= 0) {
        fds[n] = {k.report.r, POLLIN, 0};
        owners[n++] = &k;
      }
    if (n == 0) break;
    const int rc = ::poll(fds, n, 100);
    for (nfds_t i = 0; rc > 0 && i < n; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP))) continue;
      Child& k = *owners[i];
      const ssize_t got = ::read(k.report.r, &k.got, sizeof k.got);
      k.reported = true;
      if (got != static_cast<ssize_t>(sizeof k.got)) {
        fail("a side died without reporting");
      } else if (!k.got.ok) {
        fail(k.got.error);
      }
    }
    if (Clock::now() > until) fail("timed out; a side stopped making progress");
    if (!result.error.empty()) break;
  }

  for (auto& k : kids) {
    if (k.pid <= 0) continue;
    if (!result.error.empty() && !k.exited) ::kill(k.pid, SIGKILL);
    if (!k.exited) ::waitpid(k.pid, nullptr, 0);
  }
  transport.cleanup();

  result.consumer = kids[0].got;
  result.producer = kids[1].got;
  result.ok = result.error.empty() && kids[0].reported && kids[1].reported;
  if (!result.ok && result.error.empty()) result.error = "a side did not report";
  return result;
}

}  // namespace exobus::bench
