#pragma once
// What the shm micro-benchmarks share: a bus memory of their own (two types, `sender` and
// `receiver`, and a link each way: tests/support/scratch_bus.hpp), CPU pinning, a peer
// thread or forked peer process on the other core, and a failure flag that makes main()
// fail.
#include <benchmark/benchmark.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>

#include "exobus/shm/data_plane.hpp"
#include "scratch_bus.hpp"

namespace exobus::shm::bench {

using testing::kCommandLink;
using testing::kReceiverType;
using testing::kReplyLink;
using testing::kSenderType;
using testing::ScratchBus;

// Set by fail(); main() returns non-zero if any benchmark failed (Google Benchmark itself
// exits 0 after SkipWithError, which would let the ctest smoke run pass).
inline std::atomic<bool>& any_failure() {
  static std::atomic<bool> failed{false};
  return failed;
}
inline void fail(benchmark::State& state, const std::string& why) {
  any_failure().store(true, std::memory_order_relaxed);
  state.SkipWithError(why.c_str());
}

// The benchmark thread runs on core 0, its peer (thread or process) on core 1, so the two
// sides never share a core and every handoff crosses between cores as in production.
inline constexpr int kMainCore = 0;
inline constexpr int kPeerCore = 1;

inline bool pin_to(int core) {
  if (core >= static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN))) return false;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  return ::sched_setaffinity(0, sizeof(set), &set) == 0;
}
inline void unpin() {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (long core = 0; core < ::sysconf(_SC_NPROCESSORS_ONLN); ++core) CPU_SET(core, &set);
  ::sched_setaffinity(0, sizeof(set), &set);
}
// The label of a two-sided benchmark: says where each side ran.
inline std::string pinning_label(const char* peer_kind, bool pinned) {
  return pinned ? std::string("pinned: main on core 0, ") + peer_kind + " on core 1"
                : std::string("NOT pinned (fewer than 2 cores or affinity refused)");
}

// Channels and pools deep enough that a receiver on the other core lagging by a few
// thousand messages only costs back-pressure, never an error; a prefetch (leases per lane)
// of 256.
inline testing::ScratchOptions bench_options() {
  testing::ScratchOptions options;
  options.channel_capacity = 4096;
  options.reply_capacity = 64;
  options.instances = 4;
  options.lanes_per_instance = 4;
  options.leases_per_lane = 256;
  options.size_classes = {{256, 8192}, {4096, 256}};
  return options;
}

// A bus memory of each benchmark run's own.
inline std::unique_ptr<ScratchBus> bench_bus() { return std::make_unique<ScratchBus>(bench_options(), "bench"); }

// The lanes an instance uses (data_plane.hpp): commands are taken on lane 0, replies on
// lane 1, sends go out on lane 2.
inline LaneCursor take_cursor(const DataPlane& plane) { return {plane.lane(kCommandLane)}; }
inline LaneCursor reply_cursor(const DataPlane& plane) { return {plane.lane(kReplyLane)}; }
inline LaneCursor send_cursor(const DataPlane& plane) { return {plane.lane(kFirstSendLane)}; }

// Flags shared with a forked peer (anonymous shared mapping made before the fork).
struct PeerControl {
  std::atomic<std::uint32_t> ready{0};
  std::atomic<std::uint32_t> stop{0};
  std::atomic<std::uint64_t> handled{0};
};

// A peer process on core 1 that maps the bus's memory as an instance of `type` would (its
// grants only, the other side's halves read-only: testing::attach_as) and runs body(memory,
// control) until control.stop. A peer that cannot map its memory exits with status 3.
class PeerProcess {
 public:
  PeerProcess(const BusMemory& memory, std::uint16_t type,
              const std::function<void(const BusMemory&, PeerControl&)>& body) {
    void* shared = ::mmap(nullptr, sizeof(PeerControl), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) throw std::runtime_error("mmap peer control");
    control_ = new (shared) PeerControl;
    child_ = ::fork();
    if (child_ < 0) throw std::runtime_error("fork");
    if (child_ == 0) {
      pin_to(kPeerCore);
      Result<std::unique_ptr<BusMemory>> attached = testing::attach_as(memory, type);
      if (!attached) ::_exit(3);
      control_->ready.store(1, std::memory_order_release);
      body(*attached.value(), *control_);
      ::_exit(0);
    }
    while (control_->ready.load(std::memory_order_acquire) == 0 && alive()) {
    }
  }
  ~PeerProcess() {
    if (child_ > 0 && !reaped_) {
      ::kill(child_, SIGKILL);
      ::waitpid(child_, nullptr, 0);
    }
    ::munmap(control_, sizeof(PeerControl));
  }
  PeerProcess(const PeerProcess&) = delete;
  PeerProcess& operator=(const PeerProcess&) = delete;

  PeerControl& control() { return *control_; }
  // Whether the peer still runs (a dead peer must not leave the benchmark spinning).
  bool alive() {
    if (reaped_) return false;
    int status = 0;
    if (::waitpid(child_, &status, WNOHANG) == child_) {
      reaped_ = true;
      exit_status_ = status;
      return false;
    }
    return true;
  }
  // Asks the peer to finish and waits; true if it exited cleanly.
  bool stop() {
    control_->stop.store(1, std::memory_order_release);
    if (!reaped_) {
      ::waitpid(child_, &exit_status_, 0);
      reaped_ = true;
    }
    return WIFEXITED(exit_status_) && WEXITSTATUS(exit_status_) == 0;
  }

 private:
  PeerControl* control_ = nullptr;
  pid_t child_ = -1;
  bool reaped_ = false;
  int exit_status_ = 0;
};

}  // namespace exobus::shm::bench
