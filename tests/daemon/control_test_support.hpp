#pragma once
// Processes, pipes, temporary runtime directories and an in-thread server for the control
// plane tests. Every process a test starts is killed and reaped by its guard, even when an
// assertion fails half-way.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "exobus/daemon/control_server.hpp"
#include "exobus/control/runtime_paths.hpp"
#include "exobus/control/unique_fd.hpp"
#include "temp_runtime_dir.hpp"

namespace exobus::daemon::testing {

using control::RuntimePaths;
using control::UniqueFd;

using namespace std::chrono_literals;

// A one-way pipe carrying lines from a child process to the test.
class Pipe {
 public:
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) == -1) throw std::runtime_error("pipe2 failed");
    read_.reset(fds[0]);
    write_.reset(fds[1]);
  }

  void write_line(const std::string& line) const {
    const std::string text = line + "\n";
    std::size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::write(write_.get(), text.data() + done, text.size() - done);
      if (n == -1 && errno == EINTR) continue;
      if (n <= 0) return;
      done += static_cast<std::size_t>(n);
    }
  }

  // The next line, or nullopt after the timeout or at end of file.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      if (const auto end = buffer_.find('\n'); end != std::string::npos) {
        std::string line = buffer_.substr(0, end);
        buffer_.erase(0, end + 1);
        return line;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd probe{read_.get(), POLLIN, 0};
      const int ready = ::poll(&probe, 1, static_cast<int>(left.count()));
      if (ready == -1 && errno == EINTR) continue;
      if (ready <= 0) return std::nullopt;
      char chunk[4096];
      const ssize_t n = ::read(read_.get(), chunk, sizeof chunk);
      if (n == -1 && errno == EINTR) continue;
      if (n <= 0) return std::nullopt;
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  // In the child: the read end is of no use there.
  void close_read_end() { read_.reset(); }

 private:
  UniqueFd read_;
  UniqueFd write_;
  std::string buffer_;
};

// A forked process in its own process group. The destructor SIGKILLs the whole group (the
// child and anything it forked) and reaps the child.
class ChildProcess {
 public:
  // Runs `body` in the child and exits with its result; never returns there.
  static ChildProcess spawn(const std::function<int()>& body) {
    const pid_t pid = ::fork();
    if (pid == -1) throw std::runtime_error("fork failed");
    if (pid == 0) {
      ::setpgid(0, 0);
      int code = 99;
      try {
        code = body();
      } catch (...) {
        code = 98;
      }
      // _exit: the child must not run the parent's atexit handlers or gtest's reporting.
      ::_exit(code);
    }
    ::setpgid(pid, pid);  // also in the parent, so kill(-pid) works whichever runs first
    return ChildProcess(pid);
  }

  ChildProcess(ChildProcess&& other) noexcept : pid_(std::exchange(other.pid_, -1)) {}
  ChildProcess& operator=(ChildProcess&&) = delete;
  ChildProcess(const ChildProcess&) = delete;
  ~ChildProcess() {
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    reap(std::nullopt);
  }

  pid_t pid() const { return pid_; }

  void kill_hard() const { ::kill(pid_, SIGKILL); }
  void signal(int signo) const { ::kill(pid_, signo); }

  // The wait status once the child ended, or nullopt after `timeout`.
  std::optional<int> wait(std::chrono::milliseconds timeout = 5s) {
    const auto status = reap(timeout);
    if (status) {
      ::kill(-pid_, SIGKILL);  // leftovers of the group
      pid_ = -1;
    }
    return status;
  }

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}

  std::optional<int> reap(std::optional<std::chrono::milliseconds> timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout.value_or(0ms);
    while (true) {
      int status = 0;
      const pid_t done = ::waitpid(pid_, &status, timeout ? WNOHANG : 0);
      if (done == pid_) return status;
      if (done == -1 && errno != EINTR) return std::nullopt;
      if (timeout && std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      if (timeout) std::this_thread::sleep_for(5ms);
    }
  }

  pid_t pid_;
};

// What the server's callbacks saw, shared between the server thread and the test.
class Recorder {
 public:
  void registered(const InstanceHandle& handle) {
    update([&] { registered_.push_back(handle); });
  }
  void gone(const InstanceHandle& handle) {
    update([&] { gone_.push_back(handle); });
  }
  void ticked() {
    update([&] { ++ticks_; });
  }

  std::vector<InstanceHandle> registered_instances() const {
    std::lock_guard lock(mutex_);
    return registered_;
  }
  std::vector<InstanceHandle> gone_instances() const {
    std::lock_guard lock(mutex_);
    return gone_;
  }
  int count_gone(pid_t pid) const {
    std::lock_guard lock(mutex_);
    return count_gone_locked(pid);
  }

  // Wait up to `timeout` for `count` on_instance_gone of `pid`, or for `count` ticks.
  bool wait_for_gone(pid_t pid, std::chrono::milliseconds timeout = 5s, int count = 1) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return count_gone_locked(pid) >= count; });
  }
  bool wait_for_ticks(int count, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return ticks_ >= count; });
  }

 private:
  int count_gone_locked(pid_t pid) const {
    int count = 0;
    for (const auto& handle : gone_) count += handle.pid == pid ? 1 : 0;
    return count;
  }
  template <typename Change>
  void update(Change change) {
    {
      std::lock_guard lock(mutex_);
      change();
    }
    changed_.notify_all();
  }

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<InstanceHandle> registered_;
  std::vector<InstanceHandle> gone_;
  int ticks_ = 0;
};

// A ControlServer running on its own thread, stopped and joined by the destructor.
class ServerThread {
 public:
  explicit ServerThread(ControlServer server) : server_(std::move(server)) {
    thread_ = std::thread([this] { result_ = server_.run(); });
  }
  ServerThread(const ServerThread&) = delete;
  ServerThread& operator=(const ServerThread&) = delete;
  ~ServerThread() {
    server_.stop();
    thread_.join();
    EXPECT_TRUE(result_.ok()) << result_.error().message;
  }

 private:
  ControlServer server_;
  Result<void> result_;
  std::thread thread_;
};

}  // namespace exobus::daemon::testing
