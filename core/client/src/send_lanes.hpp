#pragma once
// The instance's sending lanes (shm/lane.hpp). A lane's send record describes one send at a
// time, so every thread that sends, releases or rejects holds a lane of its own meanwhile;
// threads beyond the lane count wait for one.
#include <atomic>
#include <cstdint>

#include "exobus/shm/data_plane.hpp"

namespace exobus::client {

class SendLanes {
 public:
  // A lane held until the guard goes, on every path out of the caller.
  class Held {
   public:
    Held(const Held&) = delete;
    Held& operator=(const Held&) = delete;
    ~Held() { lanes_.release(index_); }
    shm::LaneCursor& cursor() const { return lanes_.cursors_[index_]; }

   private:
    friend class SendLanes;
    Held(SendLanes& lanes, std::uint32_t index) : lanes_(lanes), index_(index) {}
    SendLanes& lanes_;
    std::uint32_t index_;
  };

  // Before any acquire(): adds a lane of the instance, up to kMaxLanes.
  void add(std::uint16_t lane);
  // Yields while every lane is held.
  Held acquire();

  static constexpr std::uint32_t kMaxLanes = 32;  // bits of the free mask

 private:
  void release(std::uint32_t index) { free_.fetch_or(1u << index, std::memory_order_release); }

  shm::LaneCursor cursors_[kMaxLanes];
  std::uint32_t count_ = 0;
  // Bit k set: lane k is free. Acquire on taking pairs with the release on giving back, so a
  // lane's cursor is handed over with everything its last holder wrote.
  std::atomic<std::uint32_t> free_{0};
};

}  // namespace exobus::client
