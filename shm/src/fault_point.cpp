#include "exobus/shm/fault_point.hpp"

#include <csignal>
#include <unistd.h>

namespace exobus::shm {

namespace detail {
std::atomic<FaultPoint> armed_fault{FaultPoint::none};
}  // namespace detail

namespace {
std::atomic<std::uint32_t> remaining_hits{0};
std::atomic<FaultAction> armed_action{FaultAction::kill_process};
}  // namespace

std::string_view to_string(FaultPoint point) {
  switch (point) {
    case FaultPoint::none: return "none";
    case FaultPoint::allocate_claimed: return "allocate_claimed";
    case FaultPoint::send_committed: return "send_committed";
    case FaultPoint::push_claimed: return "push_claimed";
    case FaultPoint::push_recorded: return "push_recorded";
    case FaultPoint::send_between_targets: return "send_between_targets";
    case FaultPoint::take_claimed: return "take_claimed";
    case FaultPoint::take_leased: return "take_leased";
    case FaultPoint::ack_cleared: return "ack_cleared";
    case FaultPoint::reclaim_marked: return "reclaim_marked";
    case FaultPoint::reclaim_pushed: return "reclaim_pushed";
    case FaultPoint::recovery_step: return "recovery_step";
    case FaultPoint::delivery_taken: return "delivery_taken";
  }
  return "unknown";
}

void arm_fault(FaultPoint point, std::uint32_t hits, FaultAction action) {
  remaining_hits.store(hits == 0 ? 1 : hits, std::memory_order_relaxed);
  armed_action.store(action, std::memory_order_relaxed);
  detail::armed_fault.store(point, std::memory_order_release);
}

void disarm_fault() { detail::armed_fault.store(FaultPoint::none, std::memory_order_release); }

void detail::fire_fault(FaultPoint point) {
  if (remaining_hits.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  disarm_fault();
  switch (armed_action.load(std::memory_order_relaxed)) {
    case FaultAction::kill_process:
      ::kill(::getpid(), SIGKILL);
      ::pause();  // SIGKILL cannot be caught; this line is never passed
      break;
    case FaultAction::stop_process:
      // raise() signals this thread, which stops before it runs on; kill(getpid()) may let
      // it run on a little while another thread takes the signal.
      std::raise(SIGSTOP);
      return;  // on from here once continued
    case FaultAction::throw_exception: break;
  }
  throw FaultInjected{point};
}

}  // namespace exobus::shm
