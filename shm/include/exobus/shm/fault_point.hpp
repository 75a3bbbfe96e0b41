#pragma once
// Fault points mark the steps of the shared-memory protocols where a process may die or
// hang. Crash tests arm one point; when execution reaches it for the n-th time the process
// kills itself with SIGKILL or stops itself with SIGSTOP (multi-process tests), or throws
// FaultInjected, which abandons the operation half-done exactly as a death would, without
// any cleanup of shared state (in-process tests). Disarmed, a point costs one relaxed load
// and a branch.
#include <atomic>
#include <cstdint>
#include <string_view>

namespace exobus::shm {

enum class FaultPoint : std::uint8_t {
  none,
  allocate_claimed,      // chunk owned by the sender, not yet sent
  send_committed,        // send committed (every target claimed), no target published yet
  push_claimed,          // channel slot claimed (WRITING), claim not yet recorded
  push_recorded,         // claim recorded in the send record, the next step not taken
  send_between_targets,  // one target claimed, the next not yet
  take_claimed,          // slot claimed (READING), lease not yet recorded
  take_leased,           // lease recorded, slot not yet released
  ack_cleared,           // message acknowledged, lease not yet freed
  reclaim_marked,        // lease marked RECLAIMING, copy not yet pushed
  reclaim_pushed,        // copy pushed, lease not yet freed
  recovery_step,         // inside recovery of a dead instance, between two repairs
  delivery_taken,        // client library: a delivery taken, its message not yet read
};
std::string_view to_string(FaultPoint point);

// stop_process: SIGSTOP, a hang the test ends with SIGCONT (or SIGKILL).
enum class FaultAction : std::uint8_t { kill_process, throw_exception, stop_process };

struct FaultInjected {
  FaultPoint point;
};

namespace detail {
extern std::atomic<FaultPoint> armed_fault;
void fire_fault(FaultPoint point);
}  // namespace detail

// Arms `point`: its `hits`-th execution (1 = the next) fires `action`.
void arm_fault(FaultPoint point, std::uint32_t hits, FaultAction action);
void disarm_fault();

inline void fault_point(FaultPoint point) {
  if (detail::armed_fault.load(std::memory_order_relaxed) == point) [[unlikely]] {
    detail::fire_fault(point);
  }
}

}  // namespace exobus::shm
