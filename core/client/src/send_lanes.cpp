#include "send_lanes.hpp"

#include <thread>

namespace exobus::client {

void SendLanes::add(std::uint16_t lane) {
  if (count_ == kMaxLanes) return;
  cursors_[count_] = {lane};
  free_.fetch_or(1u << count_, std::memory_order_release);
  ++count_;
}

SendLanes::Held SendLanes::acquire() {
  for (;;) {
    std::uint32_t lanes = free_.load(std::memory_order_acquire);
    while (lanes != 0) {
      const std::uint32_t index = static_cast<std::uint32_t>(__builtin_ctz(lanes));
      if (free_.compare_exchange_weak(lanes, lanes & ~(1u << index), std::memory_order_acquire)) {
        return Held(*this, index);
      }
    }
    std::this_thread::yield();  // more sending threads than lanes: wait for one
  }
}

}  // namespace exobus::client
